//! Blob attributes: `get-blob-attribute`, `set-blob-attribute`, `remove-blob-attribute-fields`
//! and `remove-blob-attribute`, on a blob object (the owner's wallet signs the changes).

use anyhow::{Result, bail};

use crate::cli_config::CommonArgs;
use crate::client_cmds::{client, parse_object_id, print_json, runtime};

#[derive(clap::Args)]
pub struct GetArgs {
    /// The blob object ID.
    pub object_id: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args)]
pub struct SetArgs {
    /// The blob object ID.
    pub object_id: String,
    /// An attribute to set: --attr KEY VALUE (repeatable).
    #[arg(long, num_args = 2, value_names = ["KEY", "VALUE"], required = true)]
    pub attr: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args)]
pub struct RemoveFieldsArgs {
    /// The blob object ID.
    pub object_id: String,
    /// The keys to remove.
    #[arg(long, num_args = 1.., required = true)]
    pub keys: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args)]
pub struct RemoveArgs {
    /// The blob object ID.
    pub object_id: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn get(a: GetArgs) -> Result<()> {
    let object = parse_object_id(&a.object_id)?;
    let client = client(&a.common, false)?;
    let attributes = runtime()?.block_on(client.blob_attributes(&object))?;
    if a.common.json {
        return print_json(&attributes);
    }
    if attributes.is_empty() {
        println!("Blob object {object} has no attributes.");
    }
    for (k, v) in &attributes {
        println!("{k}: {v}");
    }
    Ok(())
}

pub fn set(a: SetArgs) -> Result<()> {
    let object = parse_object_id(&a.object_id)?;
    if !a.attr.len().is_multiple_of(2) {
        bail!("--attr takes a key and a value");
    }
    let pairs: Vec<(String, String)> = a
        .attr
        .chunks(2)
        .map(|kv| (kv[0].clone(), kv[1].clone()))
        .collect();
    let client = client(&a.common, true)?;
    runtime()?.block_on(client.set_blob_attributes(&object, pairs))?;
    if !a.common.json {
        println!("Set the attributes of blob object {object}.");
    }
    Ok(())
}

pub fn remove_fields(a: RemoveFieldsArgs) -> Result<()> {
    let object = parse_object_id(&a.object_id)?;
    let client = client(&a.common, true)?;
    runtime()?.block_on(client.remove_blob_attributes(&object, Some(a.keys)))?;
    if !a.common.json {
        println!("Removed those attributes of blob object {object}.");
    }
    Ok(())
}

pub fn remove(a: RemoveArgs) -> Result<()> {
    let object = parse_object_id(&a.object_id)?;
    let client = client(&a.common, true)?;
    runtime()?.block_on(client.remove_blob_attributes(&object, None))?;
    if !a.common.json {
        println!("Removed every attribute of blob object {object}.");
    }
    Ok(())
}
