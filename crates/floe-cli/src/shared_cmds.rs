//! Shared blobs: `share` wraps a blob object the wallet owns into a shared blob that anyone may
//! extend (`extend --shared`) and nobody may delete or transfer; `fund-shared-blob` explains
//! why Floe's shared blobs hold no funds.

use anyhow::{Result, bail};

use crate::cli_config::CommonArgs;
use crate::client_cmds::{client, parse_object_id, print_json, runtime};

#[derive(clap::Args)]
pub struct ShareArgs {
    /// The certified blob object (owned by your wallet) to share.
    #[arg(long)]
    pub blob_obj_id: String,
    /// Accepted for compatibility with `walrus share`: Floe charges nothing for storage, so a
    /// shared blob holds no funds; any amount other than 0 is refused.
    #[arg(long)]
    pub amount: Option<u64>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args)]
pub struct FundArgs {
    /// The shared blob to fund.
    #[arg(long)]
    pub shared_blob_obj_id: String,
    /// The amount to add.
    #[arg(long)]
    pub amount: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

const NO_FUNDS: &str = "Floe charges nothing for storage, so shared blobs hold no funds: anyone \
    can extend a shared blob directly with `floe extend --shared --blob-obj-id <SHARED ID> \
    --epochs-extended N`";

pub fn share(a: ShareArgs) -> Result<()> {
    if a.amount.is_some_and(|n| n > 0) {
        bail!("--amount {}: {NO_FUNDS}", a.amount.unwrap_or(0));
    }
    let client = client(&a.common, true)?;
    let object = parse_object_id(&a.blob_obj_id)?;
    runtime()?.block_on(async move {
        let shared = client.share_blob(&object).await?;
        if a.common.json {
            return print_json(&Shared {
                blob_object_id: object,
                shared_blob_object_id: shared,
            });
        }
        println!("Shared blob object {object} as shared blob {shared}.");
        println!(
            "  Anyone may extend it: floe extend --shared --blob-obj-id {shared} --epochs-extended N"
        );
        println!("  Nobody, you included, may delete or transfer it any more.");
        Ok(())
    })
}

pub fn fund(a: FundArgs) -> Result<()> {
    parse_object_id(&a.shared_blob_obj_id)?;
    bail!(
        "not funding shared blob {} with {}: {NO_FUNDS}",
        a.shared_blob_obj_id,
        a.amount
    )
}

/// `store --share`: wrap the newly created blob object of `outcome` into a shared blob and name
/// it in the result (an already certified blob creates no object, so nothing is shared).
pub(crate) async fn share_new(
    client: &floe_client::Client,
    outcome: &mut floe_client::StoreOutcome,
) -> Result<()> {
    if let floe_client::BlobStoreResult::NewlyCreated {
        blob_object,
        shared_blob_object,
        ..
    } = &mut outcome.result
    {
        *shared_blob_object = Some(client.share_blob(&blob_object.id).await?);
    }
    Ok(())
}

/// `floe share --json`: the owned object that was wrapped, and the shared blob it became.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Shared {
    blob_object_id: floe_core::ObjectId,
    shared_blob_object_id: floe_core::ObjectId,
}
