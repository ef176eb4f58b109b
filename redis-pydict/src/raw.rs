//! Raw values: a dict's values as their stored CBOR bytes, passed through
//! unchanged, for tools that must not re-encode what they did not write
//! (inspection, dump and restore, bridges to other languages), and a bulk
//! write that keeps each entry's own time-to-live.

use std::borrow::Borrow;
use std::time::Duration;

use futures::stream::{Stream, StreamExt};

use crate::codec;
use crate::dict::Dict;
use crate::error::{Error, Result};
use crate::key::{parse_key, DictKey, KeyText};
use crate::space::{SetMode, Space, TtlGroup};

/// One well-formed CBOR item, kept as its exact bytes.
///
/// `Dict<K, RawCbor>` reads and writes values byte for byte: what
/// [`Dict::get`](Dict#method.get-1) returns is exactly what is stored, and
/// [`Dict::set`](Dict#method.set-1) stores exactly the bytes given (through
/// the normal write path: index, event, durable log). Unlike a decoded
/// `ciborium::Value`, nothing is normalised on the way (float widths,
/// indefinite lengths, integer encodings, tags all survive).
///
/// ```
/// use redis_pydict::RawCbor;
/// let v = RawCbor::new(vec![0x82, 0x01, 0xf9, 0x3e, 0x00])?; // [1, 1.5 as an f16]
/// assert_eq!(v.as_bytes(), [0x82, 0x01, 0xf9, 0x3e, 0x00]);
/// assert!(RawCbor::new(vec![0x82, 0x01]).is_err());           // cut short
/// assert!(RawCbor::new(vec![0x01, 0x02]).is_err());           // two items
/// # Ok::<(), redis_pydict::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawCbor(Vec<u8>);

impl RawCbor {
    /// Wraps `bytes` after checking that they are exactly one well-formed
    /// CBOR item (text strings valid UTF-8, nothing after the item);
    /// otherwise [`Error::InvalidCbor`].
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self> {
        let bytes = bytes.into();
        check(&bytes).map_err(|reason| Error::InvalidCbor { reason })?;
        Ok(RawCbor(bytes))
    }

    /// The CBOR encoding of `value`, as the library would store it.
    ///
    /// ```
    /// let v = redis_pydict::RawCbor::encode(&vec![1u8, 2])?;
    /// assert_eq!(v.as_bytes(), [0x82, 0x01, 0x02]);
    /// # Ok::<(), redis_pydict::Error>(())
    /// ```
    pub fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self> {
        codec::encode(value, "", "").map(RawCbor)
    }

    /// The CBOR bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The CBOR bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The item decoded as a generic `ciborium::Value` (for display; the
    /// decoded form may not re-encode to the same bytes).
    pub fn to_value(&self) -> Result<ciborium::Value> {
        check(&self.0).map_err(|reason| Error::InvalidCbor { reason })
    }

    /// Checks stored bytes, naming the key when they are not one CBOR item.
    fn stored(bytes: Vec<u8>, namespace: &str, key: &str) -> Result<Self> {
        match check(&bytes) {
            Ok(_) => Ok(RawCbor(bytes)),
            Err(reason) => Err(Error::Decode {
                namespace: namespace.to_owned(),
                key: key.to_owned(),
                expected: "one CBOR item",
                reason,
            }),
        }
    }
}

impl AsRef<[u8]> for RawCbor {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<RawCbor> for Vec<u8> {
    fn from(raw: RawCbor) -> Vec<u8> {
        raw.0
    }
}

impl TryFrom<Vec<u8>> for RawCbor {
    type Error = Error;

    fn try_from(bytes: Vec<u8>) -> Result<Self> {
        RawCbor::new(bytes)
    }
}

/// Decodes `bytes` as exactly one generic CBOR item (the check of well-formedness).
fn check(bytes: &[u8]) -> std::result::Result<ciborium::Value, String> {
    if bytes.is_empty() {
        return Err("it is empty, not a CBOR item".to_owned());
    }
    codec::decode_value::<ciborium::Value>(bytes)
}

/// The raw forms of the typed reads and writes: same keys, same write path.
impl<K: DictKey> Dict<K, RawCbor> {
    fn raw_stored(&self, key: &str, bytes: Vec<u8>) -> Result<RawCbor> {
        RawCbor::stored(bytes, self.namespace().name(), key)
    }

    /// The stored bytes at `key`, or `None`. Bytes that are not one CBOR item
    /// are an [`Error::Decode`] naming the key.
    pub async fn get<Q>(&self, key: &Q) -> Result<Option<RawCbor>>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        let key = key.key_text();
        match self.space().get(&key).await? {
            Some(bytes) => self.raw_stored(&key, bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Stores `value`'s bytes at `key` (removing any TTL it had).
    pub async fn set<Q>(&self, key: &Q, value: &RawCbor) -> Result<()>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        let key = key.key_text();
        self.space()
            .set(SetMode::Set, None, &[(&key, value.as_bytes())])
            .await
            .map(drop)
    }

    /// Stores `value`'s bytes at `key`, expiring after `ttl` (at least 1 ms).
    pub async fn set_with_ttl<Q>(&self, key: &Q, value: &RawCbor, ttl: Duration) -> Result<()>
    where
        K: Borrow<Q>,
        Q: KeyText + ?Sized,
    {
        let key = key.key_text();
        self.space()
            .set(SetMode::Set, Some(ttl), &[(&key, value.as_bytes())])
            .await
            .map(drop)
    }

    /// All entries with their stored bytes (see the typed `items`): a value
    /// that is not one CBOR item is an `Err` item naming its key and the
    /// stream goes on; a Redis error ends it after the `Err` item.
    pub fn items(&self) -> impl Stream<Item = Result<(K, RawCbor)>> + Send + 'static
    where
        K: Send + 'static,
    {
        self.raw_items(None)
    }

    /// Entries whose key matches the Redis glob `pattern`, with their stored bytes.
    pub fn items_matching(
        &self,
        pattern: &str,
    ) -> impl Stream<Item = Result<(K, RawCbor)>> + Send + 'static
    where
        K: Send + 'static,
    {
        self.raw_items(Some(pattern))
    }

    fn raw_items(
        &self,
        pattern: Option<&str>,
    ) -> impl Stream<Item = Result<(K, RawCbor)>> + Send + 'static
    where
        K: Send + 'static,
    {
        let namespace = self.namespace().name().to_owned();
        self.space().entries(pattern, true).map(move |entry| {
            let (key, bytes) = entry?;
            let value = RawCbor::stored(bytes.unwrap_or_default(), &namespace, &key)?;
            Ok((parse_key(&namespace, key)?, value))
        })
    }

    /// Writes many entries, each with its own time-to-live (`None`: none),
    /// through the write path (index, events, durable log).
    ///
    /// The entries go out in batches of up to `max_batch`
    /// ([`crate::StoreBuilder::max_batch`]), one batch after the other; each
    /// batch is one atomic script call (all or nothing). If a batch fails (an
    /// entry key holding foreign data is [`Error::WrongType`], a value over
    /// the size limit, a zero TTL, ...) nothing more is sent; when batches
    /// before it were applied the error is [`Error::PartlyApplied`], counting
    /// them. Writing the same entries again gives the same state, so a failed
    /// call may simply be repeated.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = redis_pydict_test::RedisServer::start();
    /// use std::time::Duration;
    /// use redis_pydict::{RawCbor, Store, Ttl};
    /// let store = Store::connect(&server.url()).await?;
    /// let raw = store.dict::<String, RawCbor>("sessions")?;
    /// let one = RawCbor::new(vec![0x01])?;
    /// raw.set_many_with_ttl([
    ///     ("a", one.clone(), None),
    ///     ("b", one.clone(), Some(Duration::from_secs(60))),
    /// ]).await?;
    /// assert_eq!(raw.ttl("a").await?, Ttl::Persistent);
    /// assert!(matches!(raw.ttl("b").await?, Ttl::Expires(_)));
    /// # Ok(()) }
    /// ```
    pub async fn set_many_with_ttl<I, Q, B>(&self, entries: I) -> Result<()>
    where
        I: IntoIterator<Item = (Q, B, Option<Duration>)>,
        Q: KeyText,
        B: Borrow<RawCbor>,
    {
        let space = self.space();
        let max_batch = space.store().settings().max_batch.max(1);
        let mut entries = entries.into_iter().peekable();
        let (mut batches, mut applied) = (0u64, 0u64);
        while entries.peek().is_some() {
            let batch: Vec<(String, B, Option<Duration>)> = entries
                .by_ref()
                .take(max_batch)
                .map(|(key, value, ttl)| (key.key_text().into_owned(), value, ttl))
                .collect();
            match write_batch(space, &batch).await {
                Ok(()) => {
                    batches += 1;
                    applied += batch.len() as u64;
                }
                Err(e) if batches == 0 => return Err(e),
                Err(e) => {
                    return Err(Error::PartlyApplied {
                        operation: "set_many_with_ttl",
                        namespace: self.namespace().name().to_owned(),
                        failed_batch: batches + 1,
                        applied_batches: batches,
                        applied_entries: applied,
                        source: Box::new(e),
                    })
                }
            }
        }
        Ok(())
    }
}

/// One atomic script call writing `batch`, grouped by TTL.
async fn write_batch<B: Borrow<RawCbor>>(
    space: &Space,
    batch: &[(String, B, Option<Duration>)],
) -> Result<()> {
    let mut groups: Vec<TtlGroup<'_>> = Vec::new();
    let mut persistent = Vec::new();
    for (key, value, ttl) in batch {
        let entry = (key.as_str(), value.borrow().as_bytes());
        match ttl {
            None => persistent.push(entry),
            Some(_) => groups.push((*ttl, vec![entry])),
        }
    }
    if !persistent.is_empty() {
        groups.push((None, persistent));
    }
    space.set_groups(&groups).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_one_well_formed_item() {
        // Byte-exact where a decoded Value would normalise: an f64 holding
        // 1.5 (ciborium writes an f16), an indefinite-length array, a tag.
        for bytes in [
            vec![0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0],
            vec![0x9f, 0x01, 0xff],
            vec![0xc1, 0x1a, 0x5f, 0x5e, 0x10, 0x00],
            vec![0x18, 0x01], // 1 in a non-shortest form
        ] {
            assert_eq!(RawCbor::new(bytes.clone()).unwrap().into_bytes(), bytes);
        }
        for bad in [vec![], vec![0x1c], vec![0x62, 0xff, 0xfe], vec![0x01, 0x01]] {
            let err = RawCbor::new(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidCbor { .. }), "{err}");
        }
    }
}
