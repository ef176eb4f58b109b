//! Finding the namespaces a store holds, by their index keys.

use crate::error::{Error, Result};
use crate::namespace::Namespace;
use crate::store::Store;

impl Store {
    /// The namespaces whose name matches the Redis glob `pattern` (`"*"` for
    /// all), found by their index keys (`{ns}#keys`, sorted sets) with a SCAN
    /// of the server, or of every master of a cluster; sorted by name. A
    /// namespace whose index is gone (never written through the library, or
    /// cleared) is not listed; `repair` rebuilds an index.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = redis_pydict_test::RedisServer::start();
    /// let store = redis_pydict::Store::connect(&server.url()).await?;
    /// store.dict::<String, u32>("jobs")?.set("a", &1).await?;
    /// store.dict::<String, u32>("users")?.set("b", &2).await?;
    /// assert_eq!(store.namespaces("j*").await?, ["jobs"]);
    /// # Ok(()) }
    /// ```
    pub async fn namespaces(&self, pattern: &str) -> Result<Vec<String>> {
        let fail = |source| Error::Redis {
            operation: "namespaces",
            namespace: pattern.to_owned(),
            source,
        };
        let mut conn = self.connection();
        let nodes = match conn.masters().await.map_err(fail)? {
            Some(masters) => masters,
            None => vec![(String::new(), 0)],
        };
        let index_pattern = format!("{{{pattern}}}#keys");
        let mut found = Vec::new();
        for node in &nodes {
            let mut cursor: u64 = 0;
            loop {
                let scan = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&index_pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .arg("TYPE")
                    .arg("zset")
                    .clone();
                let (next, keys): (u64, Vec<String>) =
                    conn.query_on_address(&scan, node).await.map_err(fail)?;
                found.extend(keys.into_iter().filter_map(|key| namespace_of(&key)));
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        found.sort();
        found.dedup();
        Ok(found)
    }
}

/// The namespace whose index key is `key`, if it is one.
fn namespace_of(key: &str) -> Option<String> {
    let name = key.strip_prefix('{')?.strip_suffix("}#keys")?;
    let ns = Namespace::new(name).ok()?;
    (ns.index_key() == key).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::namespace_of;

    #[test]
    fn index_keys_name_their_namespace() {
        assert_eq!(namespace_of("{jobs}#keys").as_deref(), Some("jobs"));
        assert_eq!(namespace_of("{a:b}#keys").as_deref(), Some("a:b"));
        assert_eq!(namespace_of("{a}#keys}#keys"), None);
        assert_eq!(namespace_of("{}#keys"), None);
        assert_eq!(namespace_of("jobs#keys"), None);
    }
}
