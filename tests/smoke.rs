use futures::TryStreamExt;
use redis_pydict::Store;
use redis_pydict_suite::RedisServer;

#[tokio::test]
async fn smoke() {
    let server = RedisServer::start();
    let store = Store::connect(&server.url()).await.unwrap();
    let d = store.dict::<String, serde_json::Value>("mykeyspace").unwrap();
    d.set("int", &10.into()).await.unwrap();
    d.set("mykey_a", &serde_json::json!({"a": [1, 2.5, null]})).await.unwrap();
    assert_eq!(d.get("int").await.unwrap(), Some(10.into()));
    assert_eq!(d.len().await.unwrap(), 2);
    let items: Vec<_> = d.items_matching("mykey*").try_collect().await.unwrap();
    assert_eq!(items.len(), 1);
    let n = d.update_with("int", |v| (v.unwrap().as_i64().unwrap() + 1).into()).await.unwrap();
    assert_eq!(n, serde_json::json!(11));
    d.update([("x", serde_json::json!(1)), ("y", serde_json::json!(2))]).await.unwrap();
    assert_eq!(d.len().await.unwrap(), 4);
    assert_eq!(d.remove("x").await.unwrap(), Some(1.into()));
    assert_eq!(d.clear().await.unwrap(), 3);
    assert_eq!(d.len().await.unwrap(), 0);
}
