//! The upload page. The form is sent by the script with `XMLHttpRequest` (for its upload
//! progress) as `PUT {path}?epochs=N`, the daemon's store route; the answer names the blob.

use crate::UploadTarget;
use crate::html::{bytes, esc};

pub fn main(prefix: &str, target: Option<&UploadTarget>) -> String {
    let Some(t) = target else {
        return "<h1>Upload</h1><p id=\"read-only\">This server is read-only: it does not take \
                uploads. Run a publisher (<code>floe daemon</code> or <code>floe publisher</code>, \
                or the testbed's daemon) and open its dashboard to upload.</p>"
            .to_string();
    };
    format!(
        "<h1>Upload a blob</h1>\
         <form id=\"upload\" class=\"stack\" method=\"put\" action=\"{path}\" \
         data-blob-page=\"{p}/blob/\" data-max=\"{max}\">\
         <p><label for=\"file\">File (at most {max_text})</label>\
         <input type=\"file\" id=\"file\" name=\"file\" required></p>\
         <p><label for=\"epochs\">Epochs to keep it</label>\
         <input type=\"number\" id=\"epochs\" name=\"epochs\" min=\"1\" value=\"1\" required></p>\
         <p><label><input type=\"checkbox\" id=\"permanent\" name=\"permanent\"> Permanent \
         (cannot be deleted)</label></p>\
         <p><button type=\"submit\" id=\"upload-button\">Upload</button></p>\
         <p><label for=\"upload-progress\">Progress</label> \
         <progress id=\"upload-progress\" max=\"100\" value=\"0\">0 %</progress> \
         <span id=\"upload-percent\">0 %</span></p>\
         <div id=\"upload-result\" role=\"status\" aria-live=\"polite\"></div></form>\
         <noscript><p>Uploading from this page needs JavaScript. Without it: \
         <code>curl -X PUT --data-binary @FILE '{path}?epochs=1'</code> against this server.</p></noscript>",
        path = esc(&t.path),
        p = esc(prefix),
        max = t.max_bytes,
        max_text = bytes(t.max_bytes),
    )
}
