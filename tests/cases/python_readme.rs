//! The Python redis-pydict README's examples, ported: run on one server by
//! `tests/dict_python_readme.rs` and on a cluster by `tests/cluster.rs`.

use crate::support::Ctx;

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Every case of this file, listed once (see the runners in
/// `tests/support/mod.rs`): expanded on a server per case by the
/// single-server test file and on the shared cluster by `tests/cluster.rs`.
macro_rules! cases {
    ($runner:ident) => {
        $runner! { python_readme:
            #[tokio::test] shared basic_get_set_of_mixed_values;
            #[tokio::test] shared user_struct_as_value;
            #[tokio::test] shared iterations_and_prefix_matching;
            #[tokio::test] shared deletion_and_contains;
            #[tokio::test] shared conversions_to_map_and_update;
        }
    };
}
pub(crate) use cases;

pub async fn basic_get_set_of_mixed_values(ctx: &Ctx) {
    let d = ctx
        .store
        .dict::<String, Value>(&ctx.ns("mykeyspace"))
        .unwrap();
    d.clear().await.unwrap();
    d.set("none", &Value::Null).await.unwrap();
    d.set("int", &json!(10)).await.unwrap();
    d.set("float", &json!(20.131)).await.unwrap();
    d.set("array", &json!([10, 20, 30])).await.unwrap();
    d.set(
        "hashmap",
        &json!({"name": "prasanna", "meta": {"age": 24, "hobbies": ["gaming"]}}),
    )
    .await
    .unwrap();

    assert_eq!(d.get("int").await.unwrap(), Some(json!(10)));
    assert_eq!(d.get("float").await.unwrap(), Some(json!(20.131)));
    assert_eq!(d.get("array").await.unwrap(), Some(json!([10, 20, 30])));
    let map = d.get("hashmap").await.unwrap().unwrap();
    assert_eq!(map["name"], "prasanna");
    assert_eq!(map["meta"]["age"], 24);
    assert_eq!(map["meta"]["hobbies"][0], "gaming");
    // A stored null is a present entry holding null, not a missing one.
    assert_eq!(d.get("none").await.unwrap(), Some(Value::Null));
    assert_eq!(d.get("missing").await.unwrap(), None);

    assert_eq!(d.clear().await.unwrap(), 5);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CustomClass {
    a: i64,
    b: i64,
    c: i64,
}

impl CustomClass {
    fn new() -> Self {
        CustomClass {
            a: 10,
            b: 20,
            c: 30,
        }
    }

    fn add(&self) -> i64 {
        self.a + self.b + self.c
    }
}

pub async fn user_struct_as_value(ctx: &Ctx) {
    let d = ctx
        .store
        .dict::<String, CustomClass>(&ctx.ns("mykeyspace"))
        .unwrap();
    d.clear().await.unwrap();
    d.set("obj", &CustomClass::new()).await.unwrap();
    assert_eq!(d.get("obj").await.unwrap().unwrap().add(), 10 + 20 + 30);
    d.clear().await.unwrap();
}

pub async fn iterations_and_prefix_matching(ctx: &Ctx) {
    let d = ctx
        .store
        .dict::<String, Value>(&ctx.ns("mykeyspace2"))
        .unwrap();
    d.clear().await.unwrap();
    d.set("mykey_none", &Value::Null).await.unwrap();
    d.set("mykey_int", &json!(10)).await.unwrap();
    d.set("mykey_float", &json!(20.131)).await.unwrap();
    d.set("array", &json!([10, 20, 30])).await.unwrap();
    d.set("hashmap", &json!({"name": "prasanna"}))
        .await
        .unwrap();

    assert_eq!(d.len().await.unwrap(), 5);
    let items: Vec<(String, Value)> = d.items().try_collect().await.unwrap();
    assert_eq!(items.len(), 5);
    let mut matching: Vec<String> = d
        .items_matching("mykey*")
        .map_ok(|(k, _)| k)
        .try_collect()
        .await
        .unwrap();
    matching.sort();
    assert_eq!(matching, ["mykey_float", "mykey_int", "mykey_none"]);
    let keys: Vec<String> = d.keys_matching("mykey*").try_collect().await.unwrap();
    assert_eq!(keys.len(), 3);
    let values: Vec<Value> = d.values().try_collect().await.unwrap();
    assert_eq!(values.len(), 5);
    d.clear().await.unwrap();
}

pub async fn deletion_and_contains(ctx: &Ctx) {
    let d = ctx
        .store
        .dict::<String, CustomClass>(&ctx.ns("mykeyspace3"))
        .unwrap();
    d.clear().await.unwrap();
    for key in ["x1", "x2", "x3", "x4", "x4"] {
        d.set(key, &CustomClass::new()).await.unwrap();
    }
    assert_eq!(d.len().await.unwrap(), 4);
    assert!(d.contains("x1").await.unwrap());
    assert!(d.delete("x1").await.unwrap());
    assert!(!d.contains("x1").await.unwrap());
    assert!(
        !d.delete("x1").await.unwrap(),
        "a second delete finds nothing"
    );
    assert_eq!(d.clear().await.unwrap(), 3);
    assert_eq!(d.len().await.unwrap(), 0);
    assert!(d.is_empty().await.unwrap());
}

pub async fn conversions_to_map_and_update(ctx: &Ctx) {
    let d = ctx
        .store
        .dict::<String, Value>(&ctx.ns("mykeyspace"))
        .unwrap();
    d.clear().await.unwrap();
    d.set("mykey_none", &Value::Null).await.unwrap();
    d.set("mykey_int", &json!(10)).await.unwrap();
    d.set("mykey_float", &json!(20.131)).await.unwrap();
    d.set("array", &json!([10, 20, 30])).await.unwrap();
    d.set("hashmap", &json!({"name": "prasanna"}))
        .await
        .unwrap();
    assert_eq!(d.to_map().await.unwrap().len(), 5);

    let normal: std::collections::HashMap<String, Value> = [
        ("mykey_1".to_owned(), json!(10)),
        ("mykey_2".to_owned(), json!(20)),
        ("mykey_3".to_owned(), json!("hello")),
        ("array".to_owned(), json!([50, 60, 70])),
    ]
    .into();
    d.set_many(&normal).await.unwrap();
    assert_eq!(
        d.len().await.unwrap(),
        5 + 3,
        "array was overwritten, not added"
    );
    assert_eq!(d.get("array").await.unwrap(), Some(json!([50, 60, 70])));
    let ordered = d.to_btree_map().await.unwrap();
    assert_eq!(ordered.keys().next().map(String::as_str), Some("array"));
    assert_eq!(ordered.len(), 8);
    d.clear().await.unwrap();
}
