//! BCS decoding of blob metadata: `BlobMetadataWithId` and `BlobMetadata`.
#![no_main]

use floe_core::{BlobMetadata, BlobMetadataWithId, EncodingConfig};
use floe_fuzz::{SHARD_COUNTS, bcs_round_trip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(with_id) = bcs_round_trip::<BlobMetadataWithId>(data) {
        // Verification of arbitrary metadata returns a verdict, never panics.
        for n in SHARD_COUNTS {
            let config = EncodingConfig::new(n).expect("valid shard count");
            let _ = with_id.verify(&config);
            let _ = with_id.metadata.symbol_size(&config);
        }
    }
    if let Some(metadata) = bcs_round_trip::<BlobMetadata>(data) {
        // Re-deriving the ID from the decoded hashes gives metadata that verifies under its own ID
        // whenever the hash count and length fit the shard count.
        let rebuilt =
            BlobMetadataWithId::new(metadata.unencoded_length(), metadata.hashes().to_vec());
        assert_eq!(rebuilt.metadata, metadata);
        assert_eq!(rebuilt.blob_id, metadata.compute_blob_id());
        if let Ok(n) = u16::try_from(metadata.hashes().len())
            && let Ok(config) = EncodingConfig::new(n)
            && metadata.unencoded_length() <= config.max_blob_size()
        {
            rebuilt
                .verify(&config)
                .expect("self-derived metadata verifies");
        }
    }
});
