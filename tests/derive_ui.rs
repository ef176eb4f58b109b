//! Compile errors of `#[derive(RedisDict)]`: one UI test per misuse, each
//! with the exact compiler output in `tests/ui/*.stderr`. Regenerate them
//! after an intended change with `TRYBUILD=overwrite cargo test --test derive_ui`.

#[test]
fn derive_compile_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
