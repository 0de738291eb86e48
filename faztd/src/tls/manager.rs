//! The one task that talks to the ACME CA.
//!
//! At start [`CertManager::load_stored`] puts every stored certificate of a
//! served name into the resolver — no order, so a restart costs the CA
//! nothing. [`CertManager::run`] then loops: for each name of
//! [`CertifiedNames`] that has no certificate, or whose renewal time (two
//! thirds of its lifetime) has come, and whose back-off has passed, it
//! orders one, one name at a time, within an hourly budget of orders. A
//! failure is stored as the name's last error and retried with exponential
//! back-off (5 s, 20 s, 80 s … up to 6 h); the certificate it had, if any,
//! keeps serving meanwhile. Names no longer served leave the resolver and
//! are not renewed (their records stay, for a site deployed again). It
//! sleeps until the next renewal or retry is due, or the names change.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use tokio::time::Instant;

use super::certs;
use super::{AcmeChallenge, CertResolver, CertifiedNames, Http01Tokens, TlsError};
use crate::shutdown::Shutdown;
use crate::store::{unix_now, CertificateRecord, Store};

/// Orders started in any hour, at most: a bug or a flood of deploys cannot
/// exhaust the CA's rate limits (Let's Encrypt allows 300 new orders per
/// account per 3 hours).
pub const ORDERS_PER_HOUR: usize = 30;

/// The first retry after a failure; each further failure waits four times
/// longer, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// How long one order may take, from creation to the certificate.
const ORDER_TIMEOUT: Duration = Duration::from_secs(90);

/// Where and how to get certificates.
#[derive(Debug, Clone)]
pub struct AcmeOptions {
    /// The ACME directory URL.
    pub directory: String,
    /// A PEM root to trust for the ACME server's own HTTPS instead of the
    /// system's roots (a private CA, the tests' pebble).
    pub root_pem: Option<PathBuf>,
    /// The account's contact address, if any.
    pub email: Option<String>,
    pub challenge: AcmeChallenge,
}

pub struct CertManager {
    store: Arc<Store>,
    names: Arc<CertifiedNames>,
    resolver: Arc<CertResolver>,
    http01: Arc<Http01Tokens>,
    options: AcmeOptions,
    /// Orders started since the daemon started (logged with each order).
    orders: AtomicU64,
}

/// What the loop knows between rounds; owned by the task, so no lock.
struct Schedule {
    records: HashMap<String, CertificateRecord>,
    /// Name → (not before this, failures in a row).
    retry: HashMap<String, (Instant, u32)>,
    /// When the orders of the last hour started.
    budget: VecDeque<Instant>,
    account: Option<Account>,
}

impl CertManager {
    pub fn new(
        store: Arc<Store>,
        names: Arc<CertifiedNames>,
        resolver: Arc<CertResolver>,
        http01: Arc<Http01Tokens>,
        options: AcmeOptions,
    ) -> Arc<CertManager> {
        Arc::new(CertManager {
            store,
            names,
            resolver,
            http01,
            options,
            orders: AtomicU64::new(0),
        })
    }

    /// Orders started since the daemon started.
    pub fn orders_started(&self) -> u64 {
        self.orders.load(Ordering::Relaxed)
    }

    /// Puts every stored, unexpired certificate of a served name into the
    /// resolver; returns how many. Orders nothing.
    pub fn load_stored(&self) -> Result<usize, TlsError> {
        let wanted = self.names.current();
        let now = unix_now();
        let mut loaded = 0;
        for record in self.store.certificates()? {
            if !record.issued() || record.not_after <= now || !wanted.contains(&record.name) {
                continue;
            }
            match certs::load(&record.name, &record.chain_pem, &record.key_pem) {
                Ok(cert) => {
                    self.resolver.install(&record.name, cert.key);
                    loaded += 1;
                }
                // The manager orders a new one (see `serve_stored`).
                Err(err) => tracing::warn!("{err}; ordering a new one"),
            }
        }
        Ok(loaded)
    }

    /// Keeps every served name certified until shutdown.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let records = match self.store.certificates() {
            Ok(records) => records,
            Err(err) => {
                tracing::error!("cannot read the stored certificates: {err}; HTTPS gets none");
                return;
            }
        };
        let mut schedule = Schedule {
            records: records.into_iter().map(|r| (r.name.clone(), r)).collect(),
            retry: HashMap::new(),
            budget: VecDeque::new(),
            account: None,
        };
        let wanted = self.names.current();
        let to_order = wanted
            .iter()
            .filter(|n| self.due_at(&schedule, n) <= unix_now())
            .count();
        tracing::info!(
            names = wanted.len(),
            to_order,
            directory = %self.options.directory,
            challenge = %self.options.challenge,
            "tls: certificate manager started"
        );
        loop {
            let wanted = self.names.current();
            self.resolver.retain(|name| wanted.contains(name));
            let wake = tokio::select! {
                wake = self.round(&mut schedule, &wanted) => wake,
                () = shutdown.cancelled() => return,
            };
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {}
                () = self.names.changed() => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Unix time a name's next order is due: now if it has no certificate.
    fn due_at(&self, schedule: &Schedule, name: &str) -> u64 {
        schedule
            .records
            .get(name)
            .filter(|r| r.issued())
            .map_or(0, |r| r.renew_at)
    }

    /// Orders what is due; returns when to look again.
    async fn round(&self, schedule: &mut Schedule, wanted: &BTreeSet<String>) -> Instant {
        let mut wake = Instant::now() + Duration::from_secs(3600);
        for name in wanted {
            self.serve_stored(schedule, name);
            let now = Instant::now();
            let due = self.due_at(schedule, name);
            let unix = unix_now();
            if due > unix {
                wake = wake.min(now + Duration::from_secs(due - unix));
                continue;
            }
            if let Some((at, _)) = schedule.retry.get(name) {
                if *at > now {
                    wake = wake.min(*at);
                    continue;
                }
            }
            while schedule
                .budget
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(3600))
            {
                schedule.budget.pop_front();
            }
            if schedule.budget.len() >= ORDERS_PER_HOUR {
                let free = schedule.budget[0] + Duration::from_secs(3600);
                self.failed(schedule, name, TlsError::Budget { name: name.clone() });
                schedule.retry.insert(name.clone(), (free, 0));
                wake = wake.min(free);
                continue;
            }
            schedule.budget.push_back(now);
            match self.obtain(schedule, name).await {
                Ok(record) => {
                    schedule.retry.remove(name);
                    wake =
                        wake.min(now + Duration::from_secs(record.renew_at.saturating_sub(unix)));
                    schedule.records.insert(name.clone(), record);
                }
                Err(err) => {
                    let failures = schedule.retry.get(name).map_or(0, |r| r.1) + 1;
                    let delay = FIRST_BACKOFF
                        .saturating_mul(4u32.saturating_pow(failures - 1))
                        .min(MAX_BACKOFF);
                    // Stored before it is logged: whoever reads the log
                    // finds the error in status too.
                    let said = err.to_string();
                    self.failed(schedule, name, err);
                    tracing::warn!(
                        name = %name,
                        retry_in_secs = delay.as_secs(),
                        "cannot get a certificate: {said}"
                    );
                    let at = Instant::now() + delay;
                    schedule.retry.insert(name.clone(), (at, failures));
                    wake = wake.min(at);
                }
            }
        }
        wake
    }

    /// Serves `name`'s stored certificate if the resolver lacks it (a site
    /// deployed again after a removal); one that cannot serve (expired,
    /// unreadable) makes the name due for an order now.
    fn serve_stored(&self, schedule: &mut Schedule, name: &str) {
        if self.resolver.has_certificate(name) {
            return;
        }
        let Some(record) = schedule.records.get_mut(name).filter(|r| r.issued()) else {
            return;
        };
        match certs::load(name, &record.chain_pem, &record.key_pem) {
            Ok(cert) if cert.not_after > unix_now() => self.resolver.install(name, cert.key),
            Ok(_) => record.renew_at = 0,
            Err(err) => {
                tracing::warn!("{err}; ordering a new one");
                record.renew_at = 0;
            }
        }
    }

    /// Records a name's last error (its certificate, if any, stays).
    fn failed(&self, schedule: &mut Schedule, name: &str, err: TlsError) {
        let record =
            schedule
                .records
                .entry(name.to_string())
                .or_insert_with(|| CertificateRecord {
                    name: name.to_string(),
                    ..CertificateRecord::default()
                });
        record.last_error = Some(err.to_string());
        record.last_error_at = Some(unix_now());
        if let Err(err) = self.store.put_certificate(record) {
            tracing::warn!(name = %name, "cannot store the certificate's last error: {err}");
        }
    }

    /// Runs one order for `name` to the end, then stores and serves it.
    async fn obtain(
        &self,
        schedule: &mut Schedule,
        name: &str,
    ) -> Result<CertificateRecord, TlsError> {
        let account = self.account(schedule).await?;
        let n = self.orders.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(name = %name, orders_this_run = n, "ACME order started");
        let mut pending = Pending::default();
        let ordered = tokio::time::timeout(ORDER_TIMEOUT, self.order(&account, name, &mut pending))
            .await
            .unwrap_or_else(|_| {
                Err(TlsError::NotValidated {
                    name: name.to_string(),
                    detail: format!("the order took longer than {} s", ORDER_TIMEOUT.as_secs()),
                })
            });
        for token in &pending.tokens {
            self.http01.remove(token);
        }
        if pending.alpn {
            self.resolver.clear_challenge(name);
        }
        let (chain_pem, key_pem) = ordered?;
        let cert = certs::load(name, &chain_pem, &key_pem)?;
        let record = CertificateRecord {
            name: name.to_string(),
            renew_at: cert.renew_at(),
            not_before: cert.not_before,
            not_after: cert.not_after,
            chain_pem,
            key_pem,
            last_error: None,
            last_error_at: None,
        };
        self.store.put_certificate(&record)?;
        self.resolver.install(name, cert.key);
        tracing::info!(
            name = %name,
            not_after = record.not_after,
            renew_at = record.renew_at,
            "certificate issued and stored"
        );
        Ok(record)
    }

    /// The ACME account: stored credentials for this directory, else a new
    /// account (stored).
    async fn account(&self, schedule: &mut Schedule) -> Result<Account, TlsError> {
        if let Some(account) = &schedule.account {
            return Ok(account.clone());
        }
        let directory = self.options.directory.clone();
        let failed = |source| TlsError::Account {
            directory: directory.clone(),
            source,
        };
        let builder = || match &self.options.root_pem {
            Some(path) => super::acme_client::AcmeHttpClient::with_extra_root(path)
                .map(|client| Account::builder_with_http(Box::new(client)))
                .map_err(|why| TlsError::AcmeRoot {
                    path: path.display().to_string(),
                    why,
                }),
            None => Account::builder().map_err(failed),
        };
        let stored = self.store.acme_account(&directory)?;
        let account =
            match stored.and_then(|b| serde_json::from_slice::<AccountCredentials>(&b).ok()) {
                Some(credentials) => builder()?
                    .from_credentials(credentials)
                    .await
                    .map_err(failed)?,
                None => {
                    let contact = self.options.email.as_ref().map(|e| format!("mailto:{e}"));
                    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
                    let new = NewAccount {
                        contact: &contacts,
                        terms_of_service_agreed: true,
                        only_return_existing: false,
                    };
                    let (account, credentials) = builder()?
                        .create(&new, directory.clone(), None)
                        .await
                        .map_err(failed)?;
                    let bytes = serde_json::to_vec(&credentials).map_err(|e| failed(e.into()))?;
                    self.store.set_acme_account(&directory, &bytes)?;
                    tracing::info!(directory = %directory, "ACME account created and stored");
                    account
                }
            };
        schedule.account = Some(account.clone());
        Ok(account)
    }

    /// One order: answer its challenges, wait for validation, finalize.
    /// Returns (chain PEM, key PEM).
    async fn order(
        &self,
        account: &Account,
        name: &str,
        pending: &mut Pending,
    ) -> Result<(String, String), TlsError> {
        let failed = |source| TlsError::Order {
            name: name.to_string(),
            source,
        };
        let identifiers = [Identifier::Dns(name.to_string())];
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(failed)?;
        let kind = match self.options.challenge {
            AcmeChallenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
            AcmeChallenge::Http01 => ChallengeType::Http01,
        };
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(failed)?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                // Reused from an earlier order: nothing to prove.
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(TlsError::NotValidated {
                        name: name.to_string(),
                        detail: format!("the authorization is {other:?}"),
                    })
                }
            }
            let mut challenge =
                authz
                    .challenge(kind.clone())
                    .ok_or_else(|| TlsError::NoChallenge {
                        name: name.to_string(),
                        challenge: self.options.challenge,
                    })?;
            let key_authorization = challenge.key_authorization();
            match self.options.challenge {
                AcmeChallenge::Http01 => {
                    self.http01
                        .insert(&challenge.token, key_authorization.as_str());
                    pending.tokens.push(challenge.token.clone());
                }
                AcmeChallenge::TlsAlpn01 => {
                    let cert = certs::alpn_challenge(name, key_authorization.digest().as_ref())?;
                    self.resolver.set_challenge(name, cert);
                    pending.alpn = true;
                }
            }
            challenge.set_ready().await.map_err(failed)?;
        }
        let polling = RetryPolicy::new().timeout(Duration::from_secs(60));
        let status = order.poll_ready(&polling).await.map_err(failed)?;
        if status != OrderStatus::Ready {
            let detail = match &order.state().error {
                Some(problem) => problem.to_string(),
                None => format!("the order is {status:?}"),
            };
            return Err(TlsError::NotValidated {
                name: name.to_string(),
                detail,
            });
        }
        let key_pem = order.finalize().await.map_err(failed)?;
        let chain_pem = order.poll_certificate(&polling).await.map_err(failed)?;
        Ok((chain_pem, key_pem))
    }
}

/// What an order set up for its validation, taken down when it ends.
#[derive(Default)]
struct Pending {
    tokens: Vec<String>,
    alpn: bool,
}
