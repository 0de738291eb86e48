//! The [`ChannelHub`]: every site's channels, in the style of mini-redis's
//! pub/sub. One `tokio::sync::broadcast` per channel carries ready-made
//! frames to its subscribers; its capacity is the per-client queue bound, so
//! a subscriber that falls that far behind sees `Lagged` and is cut off
//! instead of slowing the publisher or growing memory.
//!
//! Locks are `std::sync::Mutex`es held for a few map operations and never
//! across an `.await`. Order: the hub's site map, then a channel's state.
//! Publishing takes the site map only to find the channel, so publishers on
//! different channels do not wait on each other's fan-out.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio_tungstenite::tungstenite::Message;

use super::config::{RealtimeLimits, SiteRealtime};
use super::frames;
use crate::refusals::Refusals;
use crate::shutdown::Shutdown;

/// Why the hub refused something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RealtimeError {
    #[error("channel names are 1 to 128 visible ASCII characters")]
    BadChannel,
    #[error(
        "the message is {size} bytes; the limit is {limit} (setting realtime_max_frame_bytes)"
    )]
    TooLarge { size: usize, limit: usize },
    #[error("presence info is {size} bytes; the limit is {limit}")]
    InfoTooLarge { size: usize, limit: usize },
    #[error("the site has {limit} channels already (setting realtime_max_channels_per_site)")]
    TooManyChannels { limit: usize },
    #[error(
        "the site has {limit} connections already (setting realtime_max_connections_per_site)"
    )]
    TooManyConnections { limit: usize },
    #[error(
        "this connection has {limit} subscriptions already (setting realtime_max_subscriptions)"
    )]
    TooManySubscriptions { limit: usize },
    #[error("already subscribed to this channel")]
    AlreadySubscribed,
    #[error("not subscribed to this channel")]
    NotSubscribed,
}

/// Largest presence `info`, serialised.
pub const MAX_INFO_BYTES: usize = 1024;

/// Live counts, for `faztctl status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RealtimeStats {
    pub connections: u64,
    pub channels: u64,
    pub subscriptions: u64,
}

/// What a new subscription starts with.
pub struct Subscription {
    /// Live frames, starting right after `replay`.
    pub rx: broadcast::Receiver<Message>,
    /// Kept messages newer than the `since` the client gave, oldest first.
    pub replay: Vec<Message>,
    /// Messages after `since` were dropped from history: the client has a gap.
    pub missed: bool,
    /// The newest id published on the channel (kept or not).
    pub last_id: Option<u64>,
    /// On `presence-*` channels: everyone subscribed, this client included.
    pub members: Option<Vec<Value>>,
}

pub struct ChannelHub {
    sites: Mutex<HashMap<String, SiteChannels>>,
    /// Each live site's `realtime` section of `fazt.json`, kept current by
    /// the sites service (deploys, rollbacks, removals).
    configs: RwLock<HashMap<String, Arc<SiteRealtime>>>,
    limits: RwLock<RealtimeLimits>,
    /// Message ids come from one counter seeded with the start time in
    /// microseconds, so they increase per channel even across a restart or
    /// a channel being dropped and created again, and a stale `since` never
    /// skips new messages.
    next_id: AtomicU64,
    next_client: AtomicU64,
    connections: AtomicUsize,
    /// The daemon's shutdown: connections end on it, and are tracked by it.
    shutdown: Shutdown,
    /// Where refusals are counted for status (and logged, rate-limited).
    pub refusals: Arc<Refusals>,
}

struct SiteChannels {
    connections: usize,
    channels: HashMap<String, Arc<Channel>>,
    /// Set to true when the site is removed; its connections then close.
    /// Replaced by a fresh one at that moment, so that connections to a new
    /// site of the same name start open.
    removed: watch::Sender<bool>,
}

impl Default for SiteChannels {
    fn default() -> SiteChannels {
        SiteChannels {
            connections: 0,
            channels: HashMap::new(),
            removed: watch::channel(false).0,
        }
    }
}

/// Why the hub tells a connection to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// The daemon is shutting down.
    Shutdown,
    /// The connection's site was removed (`faztctl site rm`).
    SiteRemoved,
}

struct Channel {
    tx: broadcast::Sender<Message>,
    state: Mutex<ChannelState>,
}

struct ChannelState {
    /// Set (under both locks) when the channel leaves the site map; a
    /// publisher holding a stale `Arc` then looks it up again.
    removed: bool,
    subscribers: usize,
    history: VecDeque<(u64, Message)>,
    /// Every id up to this one is no longer in `history` (dropped, or
    /// published before this channel existed in this process).
    forgotten_up_to: u64,
    last_id: Option<u64>,
    /// Presence members: client id → info.
    members: BTreeMap<u64, Value>,
}

impl ChannelHub {
    pub fn new(limits: RealtimeLimits, shutdown: Shutdown, refusals: Arc<Refusals>) -> ChannelHub {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(1);
        ChannelHub {
            sites: Mutex::new(HashMap::new()),
            configs: RwLock::new(HashMap::new()),
            limits: RwLock::new(limits),
            next_id: AtomicU64::new(seed),
            next_client: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
            shutdown,
            refusals,
        }
    }

    pub fn limits(&self) -> RealtimeLimits {
        *self.limits.read().expect("limits lock")
    }

    pub fn set_limits(&self, limits: RealtimeLimits) {
        *self.limits.write().expect("limits lock") = limits;
    }

    /// Publishes `data` on a site's channel and returns its id. Subscribers
    /// get it in id order; it is kept in the channel's history.
    pub fn publish(&self, site: &str, channel: &str, data: &Value) -> Result<u64, RealtimeError> {
        let raw = data.to_string();
        self.publish_raw(site, channel, &raw)
    }

    /// [`publish`](Self::publish) with `data` already serialised as JSON.
    pub fn publish_raw(&self, site: &str, channel: &str, data: &str) -> Result<u64, RealtimeError> {
        if !frames::valid_channel(channel) {
            return Err(RealtimeError::BadChannel);
        }
        let limits = self.limits();
        if data.len() > limits.max_frame_bytes {
            return Err(RealtimeError::TooLarge {
                size: data.len(),
                limit: limits.max_frame_bytes,
            });
        }
        let ts = unix_millis();
        loop {
            // Nobody listens and nothing is kept: the message goes nowhere.
            let Some(ch) = self.channel(site, channel, limits.history > 0, &limits)? else {
                return Ok(self.next_id.fetch_add(1, Ordering::Relaxed));
            };
            let mut st = ch.state.lock().expect("channel lock");
            if st.removed {
                continue;
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let frame = frames::message(channel, id, ts, data);
            st.last_id = Some(id);
            if limits.history > 0 {
                st.history.push_back((id, frame.clone()));
            }
            while st.history.len() > limits.history {
                if let Some((old, _)) = st.history.pop_front() {
                    st.forgotten_up_to = old;
                }
            }
            // Under the channel lock, so ids reach subscribers in order and a
            // subscriber's history snapshot and live stream meet exactly.
            let _ = ch.tx.send(frame);
            return Ok(id);
        }
    }

    /// How many connections are subscribed to a site's channel.
    pub fn count(&self, site: &str, channel: &str) -> usize {
        self.existing(site, channel)
            .map(|ch| ch.state.lock().expect("channel lock").subscribers)
            .unwrap_or(0)
    }

    /// The members of a site's presence channel: `[{id, info}]`.
    pub fn presence(&self, site: &str, channel: &str) -> Vec<Value> {
        self.existing(site, channel)
            .map(|ch| {
                let st = ch.state.lock().expect("channel lock");
                st.members
                    .iter()
                    .map(|(id, info)| frames::member(*id, info))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn stats(&self) -> RealtimeStats {
        let sites = self.sites.lock().expect("hub lock");
        let mut stats = RealtimeStats {
            connections: self.connections.load(Ordering::Relaxed) as u64,
            ..Default::default()
        };
        for site in sites.values() {
            stats.channels += site.channels.len() as u64;
            for ch in site.channels.values() {
                stats.subscriptions += ch.state.lock().expect("channel lock").subscribers as u64;
            }
        }
        stats
    }

    /// Registers a new connection to `site`, within the per-site limit.
    pub fn connect(self: &Arc<Self>, site: &str) -> Result<ClientHandle, RealtimeError> {
        let limit = self.limits().max_connections_per_site;
        let mut sites = self.sites.lock().expect("hub lock");
        let entry = sites.entry(site.to_string()).or_default();
        if entry.connections >= limit {
            return Err(RealtimeError::TooManyConnections { limit });
        }
        entry.connections += 1;
        self.connections.fetch_add(1, Ordering::Relaxed);
        Ok(ClientHandle {
            hub: self.clone(),
            site: site.to_string(),
            id: self.next_client.fetch_add(1, Ordering::Relaxed),
            channels: HashMap::new(),
            shutdown: self.shutdown.clone(),
            site_removed: entry.removed.subscribe(),
        })
    }

    /// The live version's realtime configuration of `site`.
    pub fn set_site_config(&self, site: &str, config: SiteRealtime) {
        self.configs
            .write()
            .expect("configs lock")
            .insert(site.to_string(), Arc::new(config));
    }

    /// The realtime configuration of `site`'s live version (`None`: no such site).
    pub fn site_config(&self, site: &str) -> Option<Arc<SiteRealtime>> {
        self.configs
            .read()
            .expect("configs lock")
            .get(site)
            .cloned()
    }

    /// Forgets a removed site's channels and their history, and tells its
    /// connections to close. A new site of the same name starts empty.
    pub fn remove_site(&self, site: &str) {
        self.configs.write().expect("configs lock").remove(site);
        let mut sites = self.sites.lock().expect("hub lock");
        let Some(entry) = sites.get_mut(site) else {
            return;
        };
        for (_, channel) in entry.channels.drain() {
            channel.state.lock().expect("channel lock").removed = true;
        }
        std::mem::replace(&mut entry.removed, watch::channel(false).0).send_replace(true);
        if entry.connections == 0 {
            sites.remove(site);
        }
    }

    /// The daemon's shutdown, which connection tasks are spawned on.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    fn existing(&self, site: &str, channel: &str) -> Option<Arc<Channel>> {
        let sites = self.sites.lock().expect("hub lock");
        sites.get(site)?.channels.get(channel).cloned()
    }

    /// The channel, created if `create` and within the site's limit.
    fn channel(
        &self,
        site: &str,
        channel: &str,
        create: bool,
        limits: &RealtimeLimits,
    ) -> Result<Option<Arc<Channel>>, RealtimeError> {
        let mut sites = self.sites.lock().expect("hub lock");
        if let Some(ch) = sites.get(site).and_then(|s| s.channels.get(channel)) {
            return Ok(Some(ch.clone()));
        }
        if !create {
            return Ok(None);
        }
        let entry = sites.entry(site.to_string()).or_default();
        Ok(Some(self.create(entry, channel, limits)?))
    }

    fn create(
        &self,
        site: &mut SiteChannels,
        channel: &str,
        limits: &RealtimeLimits,
    ) -> Result<Arc<Channel>, RealtimeError> {
        if site.channels.len() >= limits.max_channels_per_site {
            return Err(RealtimeError::TooManyChannels {
                limit: limits.max_channels_per_site,
            });
        }
        let ch = Arc::new(Channel {
            tx: broadcast::channel(limits.queue_messages).0,
            state: Mutex::new(ChannelState {
                removed: false,
                subscribers: 0,
                history: VecDeque::new(),
                forgotten_up_to: self.next_id.load(Ordering::Relaxed).saturating_sub(1),
                last_id: None,
                members: BTreeMap::new(),
            }),
        });
        site.channels.insert(channel.to_string(), ch.clone());
        Ok(ch)
    }

    fn subscribe(
        &self,
        site: &str,
        channel: &str,
        client: u64,
        since: Option<u64>,
        info: Option<Value>,
    ) -> Result<(Subscription, Arc<Channel>), RealtimeError> {
        let limits = self.limits();
        let presence = frames::is_presence(channel);
        let info = if presence {
            let info = info.unwrap_or(Value::Null);
            let size = info.to_string().len();
            if size > MAX_INFO_BYTES {
                return Err(RealtimeError::InfoTooLarge {
                    size,
                    limit: MAX_INFO_BYTES,
                });
            }
            Some(info)
        } else {
            None
        };
        let mut sites = self.sites.lock().expect("hub lock");
        let entry = sites.entry(site.to_string()).or_default();
        let ch = match entry.channels.get(channel) {
            Some(ch) => ch.clone(),
            None => self.create(entry, channel, &limits)?,
        };
        let mut st = ch.state.lock().expect("channel lock");
        if let Some(info) = info {
            // Sent before this client's receiver exists: others see the join,
            // the client itself sees the members list instead.
            let _ = ch.tx.send(frames::presence_change(
                channel,
                "join",
                frames::member(client, &info),
            ));
            st.members.insert(client, info);
        }
        let rx = ch.tx.subscribe();
        st.subscribers += 1;
        let (replay, missed) = match since {
            Some(since) => (
                st.history
                    .iter()
                    .filter(|(id, _)| *id > since)
                    .map(|(_, m)| m.clone())
                    .collect(),
                since < st.forgotten_up_to,
            ),
            None => (Vec::new(), false),
        };
        let members = presence.then(|| {
            st.members
                .iter()
                .map(|(id, info)| frames::member(*id, info))
                .collect()
        });
        let subscription = Subscription {
            rx,
            replay,
            missed,
            last_id: st.last_id,
            members,
        };
        drop(st);
        Ok((subscription, ch))
    }

    /// `ch` is the channel the client subscribed to: if it has left the
    /// site's map since (the site was removed), a channel of the same name
    /// there now is another one, and is left alone.
    fn unsubscribe(&self, site: &str, channel: &str, ch: &Arc<Channel>, client: u64) {
        let mut sites = self.sites.lock().expect("hub lock");
        let mut st = ch.state.lock().expect("channel lock");
        st.subscribers = st.subscribers.saturating_sub(1);
        if let Some(info) = st.members.remove(&client) {
            let _ = ch.tx.send(frames::presence_change(
                channel,
                "leave",
                frames::member(client, &info),
            ));
        }
        if st.subscribers == 0 && st.history.is_empty() && !st.removed {
            st.removed = true;
            drop(st);
            if let Some(entry) = sites.get_mut(site) {
                entry.channels.remove(channel);
            }
        }
    }

    fn disconnect(&self, site: &str) {
        let mut sites = self.sites.lock().expect("hub lock");
        if let Some(entry) = sites.get_mut(site) {
            entry.connections = entry.connections.saturating_sub(1);
            if entry.connections == 0 && entry.channels.is_empty() {
                sites.remove(site);
            }
        }
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One connection's hold on the hub: its id, its subscriptions, its place in
/// the site's connection count. Dropping it leaves every channel (presence
/// members see `leave`) and frees the slot, however the connection ended.
pub struct ClientHandle {
    hub: Arc<ChannelHub>,
    site: String,
    id: u64,
    /// Subscribed channels, by name, with the very channel subscribed to.
    channels: HashMap<String, Arc<Channel>>,
    shutdown: Shutdown,
    site_removed: watch::Receiver<bool>,
}

impl ClientHandle {
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn site(&self) -> &str {
        &self.site
    }

    pub fn hub(&self) -> &Arc<ChannelHub> {
        &self.hub
    }

    /// Resolves when the connection must close: the daemon shuts down, or
    /// its site was removed.
    pub async fn closing(&self) -> Closing {
        // A sender that is gone without having said true never will.
        let until_true = |rx: &watch::Receiver<bool>| {
            let mut rx = rx.clone();
            async move {
                if rx.wait_for(|set| *set).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = self.shutdown.cancelled() => Closing::Shutdown,
            _ = until_true(&self.site_removed) => Closing::SiteRemoved,
        }
    }

    pub fn subscribe(
        &mut self,
        channel: &str,
        since: Option<u64>,
        info: Option<Value>,
    ) -> Result<Subscription, RealtimeError> {
        if !frames::valid_channel(channel) {
            return Err(RealtimeError::BadChannel);
        }
        if self.channels.contains_key(channel) {
            return Err(RealtimeError::AlreadySubscribed);
        }
        let limit = self.hub.limits().max_subscriptions;
        if self.channels.len() >= limit {
            return Err(RealtimeError::TooManySubscriptions { limit });
        }
        let (sub, ch) = self
            .hub
            .subscribe(&self.site, channel, self.id, since, info)?;
        self.channels.insert(channel.to_string(), ch);
        Ok(sub)
    }

    pub fn unsubscribe(&mut self, channel: &str) -> Result<(), RealtimeError> {
        let Some(ch) = self.channels.remove(channel) else {
            return Err(RealtimeError::NotSubscribed);
        };
        self.hub.unsubscribe(&self.site, channel, &ch, self.id);
        Ok(())
    }
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        for (channel, ch) in self.channels.drain() {
            self.hub.unsubscribe(&self.site, &channel, &ch, self.id);
        }
        self.hub.disconnect(&self.site);
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn hub() -> Arc<ChannelHub> {
        Arc::new(ChannelHub::new(
            RealtimeLimits {
                history: 3,
                ..Default::default()
            },
            Shutdown::new(),
            Default::default(),
        ))
    }

    fn id_of(m: &Message) -> u64 {
        let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        v["id"].as_u64().unwrap()
    }

    #[tokio::test]
    async fn a_removed_site_loses_its_channels_and_its_connections_close() {
        let hub = hub();
        let mut old = hub.connect("s").unwrap();
        old.subscribe("c", None, None).unwrap();
        let first = hub.publish("s", "c", &json!("before")).unwrap();
        hub.remove_site("s");
        assert_eq!(old.closing().await, Closing::SiteRemoved);

        // A new site of the same name starts empty and open.
        let mut new = hub.connect("s").unwrap();
        let sub = new.subscribe("c", Some(first - 1), None).unwrap();
        assert!(sub.replay.is_empty(), "history of the removed site");
        let still_open = tokio::time::timeout(Duration::from_millis(50), new.closing()).await;
        assert!(still_open.is_err(), "the new connection was told to close");
        // The old connection going away leaves the new channel alone.
        drop(old);
        assert_eq!(hub.count("s", "c"), 1);
        assert_eq!(hub.stats().connections, 1);
    }

    #[test]
    fn history_replay_has_no_gap_and_no_duplicate() {
        let hub = hub();
        let mut a = hub.connect("s").unwrap();
        let ids: Vec<u64> = (0..5)
            .map(|i| hub.publish("s", "c", &json!(i)).unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        // Only the last 3 are kept: after the 1st, the 2nd is gone (a gap).
        let sub = a.subscribe("c", Some(ids[0]), None).unwrap();
        assert!(sub.missed);
        assert_eq!(
            sub.replay.iter().map(id_of).collect::<Vec<_>>(),
            ids[2..].to_vec()
        );
        a.unsubscribe("c").unwrap();
        let sub = a.subscribe("c", Some(ids[1]), None).unwrap();
        assert!(!sub.missed);
        assert_eq!(sub.replay.len(), 3);
        a.unsubscribe("c").unwrap();
        let mut sub = a.subscribe("c", Some(ids[3]), None).unwrap();
        assert!(!sub.missed);
        assert_eq!(
            sub.replay.iter().map(id_of).collect::<Vec<_>>(),
            vec![ids[4]]
        );
        let next = hub.publish("s", "c", &json!("live")).unwrap();
        assert_eq!(id_of(&sub.rx.try_recv().unwrap()), next);
    }

    #[test]
    fn sites_are_isolated_and_counts_follow_handles() {
        let hub = hub();
        let mut a = hub.connect("a").unwrap();
        let mut b = hub.connect("b").unwrap();
        let mut sa = a.subscribe("c", None, None).unwrap();
        let mut sb = b.subscribe("c", None, None).unwrap();
        hub.publish("a", "c", &json!("for a")).unwrap();
        assert!(sa.rx.try_recv().is_ok());
        assert!(sb.rx.try_recv().is_err());
        assert_eq!(hub.count("a", "c"), 1);
        drop(a);
        assert_eq!(hub.count("a", "c"), 0);
        assert_eq!(hub.stats().connections, 1);
    }

    #[test]
    fn presence_join_members_leave() {
        let hub = hub();
        let mut a = hub.connect("s").unwrap();
        let mut b = hub.connect("s").unwrap();
        let mut sa = a
            .subscribe("presence-r", None, Some(json!({"name": "ann"})))
            .unwrap();
        assert_eq!(sa.members.as_ref().unwrap().len(), 1);
        let sb = b
            .subscribe("presence-r", None, Some(json!({"name": "bob"})))
            .unwrap();
        assert_eq!(sb.members.as_ref().unwrap().len(), 2);
        let join: Value =
            serde_json::from_str(sa.rx.try_recv().unwrap().to_text().unwrap()).unwrap();
        assert_eq!(join["event"], "join");
        assert_eq!(join["member"]["info"]["name"], "bob");
        assert_eq!(hub.presence("s", "presence-r").len(), 2);
        drop(b);
        let leave: Value =
            serde_json::from_str(sa.rx.try_recv().unwrap().to_text().unwrap()).unwrap();
        assert_eq!(leave["event"], "leave");
        assert_eq!(hub.presence("s", "presence-r").len(), 1);
    }

    #[test]
    fn limits() {
        let hub = Arc::new(ChannelHub::new(
            RealtimeLimits {
                max_connections_per_site: 1,
                max_subscriptions: 1,
                max_frame_bytes: 10,
                ..Default::default()
            },
            Shutdown::new(),
            Default::default(),
        ));
        let mut a = hub.connect("s").unwrap();
        assert!(matches!(
            hub.connect("s"),
            Err(RealtimeError::TooManyConnections { .. })
        ));
        a.subscribe("x", None, None).unwrap();
        assert!(matches!(
            a.subscribe("y", None, None),
            Err(RealtimeError::TooManySubscriptions { .. })
        ));
        assert!(matches!(
            hub.publish("s", "x", &json!("a long string")),
            Err(RealtimeError::TooLarge { .. })
        ));
        assert_eq!(
            hub.publish("s", "bad name", &json!(1)),
            Err(RealtimeError::BadChannel)
        );
    }
}
