//! Redis glob matching (`*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`), as the
//! server applies it to keys, for filtering durable-log events by key.

/// Whether `text` matches the Redis glob `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    match_from(&p, &t)
}

fn match_from(p: &[char], t: &[char]) -> bool {
    let Some((&first, rest)) = p.split_first() else {
        return t.is_empty();
    };
    match first {
        '*' => (0..=t.len()).any(|skip| match_from(rest, &t[skip..])),
        '?' => !t.is_empty() && match_from(rest, &t[1..]),
        '[' => {
            let Some((&c, t_rest)) = t.split_first() else {
                return false;
            };
            let (negate, mut i) = match rest.first() {
                Some('^') => (true, 1),
                _ => (false, 0),
            };
            let mut hit = false;
            while i < rest.len() && rest[i] != ']' {
                if rest[i] == '\\' && i + 1 < rest.len() {
                    hit |= rest[i + 1] == c;
                    i += 2;
                } else if i + 2 < rest.len() && rest[i + 1] == '-' && rest[i + 2] != ']' {
                    let (lo, hi) = (rest[i].min(rest[i + 2]), rest[i].max(rest[i + 2]));
                    hit |= (lo..=hi).contains(&c);
                    i += 3;
                } else {
                    hit |= rest[i] == c;
                    i += 1;
                }
            }
            // An unclosed class runs to the end of the pattern, as in Redis.
            let after = if i < rest.len() {
                &rest[i + 1..]
            } else {
                &rest[i..]
            };
            hit != negate && match_from(after, t_rest)
        }
        '\\' if !rest.is_empty() => t.first() == rest.first() && match_from(&rest[1..], &t[1..]),
        c => t.first() == Some(&c) && match_from(rest, &t[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
        assert!(matches("*", ""));
        assert!(matches("job:*", "job:1"));
        assert!(!matches("job:*", "jobs"));
        assert!(matches("h?llo", "hallo"));
        assert!(matches("h[ae]llo", "hello"));
        assert!(!matches("h[^e]llo", "hello"));
        assert!(matches("h[a-b]llo", "hbllo"));
        assert!(matches("a\\*", "a*"));
        assert!(!matches("a\\*", "ab"));
    }
}
