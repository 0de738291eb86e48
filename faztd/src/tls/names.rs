//! The names this instance gets certificates for, and nothing else.
//!
//! [`CertifiedNames`] is the one list: the domain, `admin.DOMAIN`, each
//! deployed site's `NAME.DOMAIN` (the `root` site is the domain itself),
//! and extra names from other sources (custom domains) through
//! [`CertifiedNames::set_extra`]. It follows the sites service as a
//! `SiteListener` (in `sites/listeners.rs`), and wakes the certificate manager when it changes. A
//! name a TLS client sends is never added here: that is what keeps junk
//! handshakes from spending the CA's rate limits (DESIGN.md §12).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use tokio::sync::Notify;

pub struct CertifiedNames {
    domain: String,
    /// Lock order: taken alone, never across an `.await`.
    sets: Mutex<NameSets>,
    changed: Notify,
}

#[derive(Default)]
struct NameSets {
    /// `NAME.DOMAIN` of each deployed site.
    sites: BTreeSet<String>,
    /// Names from other sources, by source (e.g. `"custom domains"`).
    extra: BTreeMap<&'static str, BTreeSet<String>>,
}

impl CertifiedNames {
    pub fn new(domain: &str) -> CertifiedNames {
        CertifiedNames {
            domain: domain.trim().trim_end_matches('.').to_ascii_lowercase(),
            sets: Mutex::default(),
            changed: Notify::new(),
        }
    }

    /// The instance's own name: its certificate answers unknown names.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The host a site answers at.
    pub fn site_host(&self, site: &str) -> String {
        match site {
            "root" => self.domain.clone(),
            name => format!("{name}.{}", self.domain),
        }
    }

    /// Every name to certify now, sorted.
    pub fn current(&self) -> BTreeSet<String> {
        let sets = self.sets.lock().expect("names lock");
        let mut names: BTreeSet<String> = [self.domain.clone(), format!("admin.{}", self.domain)]
            .into_iter()
            .collect();
        names.extend(sets.sites.iter().cloned());
        for extra in sets.extra.values() {
            names.extend(extra.iter().cloned());
        }
        names
    }

    /// A site is live (deployed, rolled back, or loaded at start): its
    /// host is certified.
    pub fn site_live(&self, site: &str) {
        let host = self.site_host(site);
        self.sets.lock().expect("names lock").sites.insert(host);
        self.changed.notify_one();
    }

    /// A site was removed: its host is no longer certified (nor renewed).
    pub fn site_removed(&self, site: &str) {
        let host = self.site_host(site);
        self.sets.lock().expect("names lock").sites.remove(&host);
        self.changed.notify_one();
    }

    /// Whether `name` is one of [`Self::current`] (for tests: it builds the
    /// whole set).
    #[cfg(test)]
    pub fn contains(&self, name: &str) -> bool {
        self.current().contains(name)
    }

    /// Replaces the names that come from `source` (the hook for custom
    /// domains: call it whenever their list changes). Names are lowercased.
    pub fn set_extra(&self, source: &'static str, names: impl IntoIterator<Item = String>) {
        let names = names
            .into_iter()
            .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        self.sets
            .lock()
            .expect("names lock")
            .extra
            .insert(source, names);
        self.changed.notify_one();
    }

    /// Adds one name from `source` (e.g. a custom domain just added).
    pub fn add_extra(&self, source: &'static str, name: &str) {
        let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
        let mut sets = self.sets.lock().expect("names lock");
        sets.extra.entry(source).or_default().insert(name);
        drop(sets);
        self.changed.notify_one();
    }

    /// Removes one name from `source`: it is no longer served nor renewed.
    pub fn remove_extra(&self, source: &'static str, name: &str) {
        let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
        let mut sets = self.sets.lock().expect("names lock");
        if let Some(names) = sets.extra.get_mut(source) {
            names.remove(&name);
        }
        drop(sets);
        self.changed.notify_one();
    }

    /// Resolves after the set changed since the last call (a change made
    /// while nobody waited is not lost).
    pub async fn changed(&self) {
        self.changed.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_admin_sites_and_extras() {
        let names = CertifiedNames::new("Example.com.");
        let list = |n: &CertifiedNames| n.current().into_iter().collect::<Vec<_>>();
        assert_eq!(list(&names), ["admin.example.com", "example.com"]);
        assert_eq!(names.site_host("root"), "example.com");
        assert_eq!(names.site_host("blog"), "blog.example.com");
        names.set_extra("custom domains", ["Shop.Example.org".to_string()]);
        assert!(names.contains("shop.example.org"));
        names.set_extra("custom domains", []);
        assert!(!names.contains("shop.example.org"));
        names.add_extra("custom domains", "Shop.Example.org.");
        assert!(names.contains("shop.example.org"));
        names.remove_extra("custom domains", "shop.example.org");
        assert!(!names.contains("shop.example.org"));
        names.site_live("blog");
        assert!(names.contains("blog.example.com"));
        names.site_removed("blog");
        assert!(!names.contains("blog.example.com"));
    }
}
