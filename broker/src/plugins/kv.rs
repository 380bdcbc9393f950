//! Key-value buckets granted to plugins: in the broker's memory, shared by the plugins granted
//! the same bucket and kept across hot swaps. Bounded: key and value sizes, keys per bucket.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

use super::bindings::waspmq::plugin::kv::Error;

const MAX_KEY_BYTES: usize = 256;
const MAX_VALUE_BYTES: usize = 64 * 1024;
const MAX_KEYS_PER_BUCKET: usize = 10_000;

type Bucket = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// Every bucket of the chain, by bucket name.
#[derive(Clone, Default)]
pub struct KvBuckets {
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
}

impl KvBuckets {
    /// The buckets a plugin's `kv = { logical = "bucket" }` grants, by logical name.
    pub fn grants(&self, grants: &BTreeMap<String, String>) -> KvGrants {
        let mut all = self.buckets.lock();
        let granted = grants
            .iter()
            .map(|(logical, bucket)| {
                (
                    logical.clone(),
                    all.entry(bucket.clone()).or_default().clone(),
                )
            })
            .collect();
        KvGrants {
            buckets: Arc::new(granted),
        }
    }
}

/// One plugin's granted buckets.
#[derive(Clone, Default)]
pub struct KvGrants {
    buckets: Arc<HashMap<String, Bucket>>,
}

impl KvGrants {
    fn bucket(&self, name: &str) -> Result<&Bucket, Error> {
        self.buckets.get(name).ok_or(Error::AccessDenied)
    }

    pub fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.bucket(bucket)?.lock().get(key).cloned())
    }

    pub fn set(&self, bucket: &str, key: String, value: Vec<u8>) -> Result<(), Error> {
        let bucket = self.bucket(bucket)?;
        if key.len() > MAX_KEY_BYTES || value.len() > MAX_VALUE_BYTES {
            return Err(Error::QuotaExceeded);
        }
        let mut map = bucket.lock();
        if map.len() >= MAX_KEYS_PER_BUCKET && !map.contains_key(&key) {
            return Err(Error::QuotaExceeded);
        }
        map.insert(key, value);
        Ok(())
    }

    pub fn delete(&self, bucket: &str, key: &str) -> Result<(), Error> {
        self.bucket(bucket)?.lock().remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants() -> (KvBuckets, KvGrants) {
        let all = KvBuckets::default();
        let grants = all.grants(&BTreeMap::from([("mine".to_owned(), "shared".to_owned())]));
        (all, grants)
    }

    #[test]
    fn only_granted_buckets_are_reachable() {
        let (_, g) = grants();
        assert_eq!(g.get("other", "k"), Err(Error::AccessDenied));
        assert_eq!(g.set("mine", "k".into(), b"v".to_vec()), Ok(()));
        assert_eq!(g.get("mine", "k"), Ok(Some(b"v".to_vec())));
        assert_eq!(g.delete("mine", "k"), Ok(()));
        assert_eq!(g.get("mine", "k"), Ok(None));
    }

    #[test]
    fn plugins_granted_the_same_bucket_share_it() {
        let (all, a) = grants();
        let b = all.grants(&BTreeMap::from([(
            "theirs".to_owned(),
            "shared".to_owned(),
        )]));
        a.set("mine", "k".into(), b"v".to_vec()).expect("set");
        assert_eq!(b.get("theirs", "k"), Ok(Some(b"v".to_vec())));
    }

    #[test]
    fn oversized_keys_and_values_are_refused() {
        let (_, g) = grants();
        assert_eq!(
            g.set("mine", "k".repeat(300), Vec::new()),
            Err(Error::QuotaExceeded)
        );
        assert_eq!(
            g.set("mine", "k".into(), vec![0; 70_000]),
            Err(Error::QuotaExceeded)
        );
    }
}
