//! The sites a fresh instance starts with: a welcome page (`root`) and a
//! small `demo`, embedded in the binary and written into the database once.

use crate::content;
use crate::store::{NewFile, Store, StoreError};

const SEEDED_SETTING: &str = "seeded";

macro_rules! seed_file {
    ($path:literal, $file:literal) => {
        (
            $path,
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/seed/", $file)) as &[u8],
        )
    };
}

const ROOT: &[(&str, &[u8])] = &[seed_file!("index.html", "root/index.html")];

const DEMO: &[(&str, &[u8])] = &[
    seed_file!("index.html", "demo/index.html"),
    seed_file!("about.html", "demo/about.html"),
    seed_file!("404.html", "demo/404.html"),
    seed_file!("assets/style.css", "demo/assets/style.css"),
    seed_file!("assets/app.js", "demo/assets/app.js"),
    seed_file!("api/hello.js", "demo/api/hello.js"),
];

/// Writes the seed sites on the first start of an instance. Later starts
/// (even after the seeds were removed) leave the database alone.
pub fn seed_if_new(store: &Store) -> Result<bool, StoreError> {
    if store.setting(SEEDED_SETTING)?.is_some() {
        return Ok(false);
    }
    for (site, files) in [("root", ROOT), ("demo", DEMO)] {
        if store.site(site)?.is_some() {
            continue;
        }
        let mut new_files = Vec::with_capacity(files.len());
        for (path, bytes) in files {
            let content_type = content::content_type_for(path);
            let hash = store.put_blob(bytes, &content_type)?;
            new_files.push(NewFile {
                path: path.to_string(),
                hash,
                content_type,
            });
        }
        let config = crate::sites::SiteConfig::default().to_stored();
        store.commit_version(
            site,
            &new_files,
            false,
            Some(config),
            crate::store::DEFAULT_RETAIN_VERSIONS,
        )?;
    }
    store.set_setting(SEEDED_SETTING, "1")?;
    Ok(true)
}
