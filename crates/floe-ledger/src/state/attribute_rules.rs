//! Blob attributes: key–value pairs on a blob object (Walrus's `metadata` field), set and
//! removed by the owner while the object is live. Bounded in count and size; no event (the
//! attributes are part of the object, read with it).

use floe_core::ObjectId;

use super::LedgerState;
use crate::error::TxError;
use crate::types::Address;

/// At most this many attributes per blob object.
pub const MAX_ATTRIBUTES: usize = 64;
/// At most this many bytes of keys and values together per blob object.
pub const MAX_ATTRIBUTE_BYTES: usize = 16 * 1024;

impl LedgerState {
    pub(super) fn set_attributes(
        &mut self,
        sender: &Address,
        id: &ObjectId,
        pairs: &[(String, String)],
    ) -> Result<(), TxError> {
        let blob = self.owned_live_blob(id, sender)?;
        if pairs.is_empty() {
            return Err(TxError::BadAttributes("no attribute to set".into()));
        }
        let mut next = blob.attributes.clone();
        for (key, value) in pairs {
            if key.is_empty() {
                return Err(TxError::BadAttributes("an attribute key is empty".into()));
            }
            next.insert(key.clone(), value.clone());
        }
        let bytes: usize = next.iter().map(|(k, v)| k.len() + v.len()).sum();
        if next.len() > MAX_ATTRIBUTES || bytes > MAX_ATTRIBUTE_BYTES {
            return Err(TxError::BadAttributes(format!(
                "{} attributes of {bytes} bytes; at most {MAX_ATTRIBUTES} of \
                 {MAX_ATTRIBUTE_BYTES} bytes in all",
                next.len()
            )));
        }
        self.blobs.get_mut(id).expect("checked").attributes = next;
        Ok(())
    }

    pub(super) fn remove_attributes(
        &mut self,
        sender: &Address,
        id: &ObjectId,
        keys: Option<&[String]>,
    ) -> Result<(), TxError> {
        self.owned_live_blob(id, sender)?;
        let blob = self.blobs.get_mut(id).expect("checked");
        match keys {
            None => blob.attributes.clear(),
            Some(keys) => {
                for key in keys {
                    blob.attributes.remove(key);
                }
            }
        }
        Ok(())
    }
}
