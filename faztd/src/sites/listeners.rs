//! How the views below the sites service follow site changes. (The serving
//! catalog, which belongs to `http`, implements [`SiteListener`] itself.)

use super::{DomainChange, DomainListener, SiteChange, SiteListener};
use crate::functions::logs::SiteLogs;
use crate::realtime::ChannelHub;
use crate::store::StoreError;
use crate::tls::CertifiedNames;

/// Realtime follows each live version's `realtime` section (who may publish,
/// which pages may connect); a removed site loses its channels and history
/// and its connections are closed.
impl SiteListener for ChannelHub {
    fn site_changed(&self, change: &SiteChange) -> Result<(), StoreError> {
        match change {
            SiteChange::Live { site, config, .. } => {
                self.set_site_config(site, config.realtime.clone())
            }
            SiteChange::Removed { site } => self.remove_site(site),
        }
        Ok(())
    }
}

/// A removed site's function log is forgotten, so a new site of the same
/// name starts with an empty one.
impl SiteListener for SiteLogs {
    fn site_changed(&self, change: &SiteChange) -> Result<(), StoreError> {
        if let SiteChange::Removed { site } = change {
            self.forget(site);
        }
        Ok(())
    }
}

/// A deployed site's name is certified; a removed site's no longer is
/// (its certificate stops renewing and is no longer served).
impl SiteListener for CertifiedNames {
    fn site_changed(&self, change: &SiteChange) -> Result<(), StoreError> {
        match change {
            SiteChange::Live { site, .. } => self.site_live(site.as_str()),
            SiteChange::Removed { site } => self.site_removed(site.as_str()),
        }
        Ok(())
    }
}

/// A custom domain is certified while it serves a site.
impl DomainListener for CertifiedNames {
    fn domain_changed(&self, change: &DomainChange) {
        const SOURCE: &str = "custom domains";
        match change {
            DomainChange::Added { domain, .. } => self.add_extra(SOURCE, domain.as_str()),
            DomainChange::Removed { domain, .. } => self.remove_extra(SOURCE, domain.as_str()),
        }
    }
}
