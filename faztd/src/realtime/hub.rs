//! The [`ChannelHub`]: every site's channels, in the style of mini-redis's
//! pub/sub, with every piece of memory a client can make it hold bounded.
//!
//! - A channel fans each frame out to its subscribers' queues
//!   (`queue.rs`): bounded per subscriber, allocated as frames queue up,
//!   and a subscriber that falls a whole queue behind is cut off instead of
//!   slowing the publisher or growing memory.
//! - What a channel keeps for catch-up is bounded in messages and in bytes,
//!   per channel and per site (`history.rs`).
//! - A site has at most `max_channels_per_site` channels. A channel nobody
//!   subscribes to is *unwatched*: when the site is full, the least
//!   recently used unwatched channel makes room for a new one, so a flood
//!   of one-message channels cannot lock a site out until a restart; only
//!   when every channel has subscribers is a new one refused. An unwatched
//!   channel idle for `channel_idle` is dropped by [`sweep`](ChannelHub::sweep).
//!
//! Locks are `std::sync::Mutex`es held for a few map operations and never
//! across an `.await`. Order: the hub's site map, then a channel's state,
//! then its site's history. Who subscribes and when each channel was last
//! used live under the site map (they change on subscribe, unsubscribe and
//! lookup, which take it anyway); publishing takes the site map only to
//! find the channel, so publishers on different channels do not wait on
//! each other's fan-out.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::config::{RealtimeLimits, SiteRealtime};
use super::frames;
use super::history::{HistoryBounds, Replay, SiteHistory};
use super::queue::{self, Inbox, Offered, Outbox};
use crate::refusals::{Refusal, Refusals};
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
    #[error(
        "the site has {limit} channels already, each with subscribers (setting realtime_max_channels_per_site)"
    )]
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

/// What a channel costs beyond its history (its state, its map entries,
/// its name), for the estimate of what the hub holds.
const CHANNEL_COST: usize = 512;

/// Live counts, for `faztctl status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RealtimeStats {
    pub connections: u64,
    pub channels: u64,
    pub subscriptions: u64,
}

/// What a [`sweep`](ChannelHub::sweep) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Idle channels dropped with their history.
    pub expired: usize,
    /// Roughly what every site's channels and history hold now, in bytes.
    pub held_bytes: usize,
}

/// What a new subscription starts with.
pub struct Subscription {
    /// Live frames, starting right after `replay`.
    pub rx: Inbox,
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
    channels: HashMap<Arc<str>, ChannelSlot>,
    /// The channels nobody subscribes to, by use stamp: the first is the
    /// least recently used, the one a new channel displaces when the site
    /// is full, and the first the sweep looks at.
    unwatched: BTreeMap<u64, Arc<str>>,
    next_stamp: u64,
    /// Every channel's kept messages, bounded together.
    history: Arc<Mutex<SiteHistory>>,
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
            unwatched: BTreeMap::new(),
            next_stamp: 0,
            history: Default::default(),
            removed: watch::channel(false).0,
        }
    }
}

/// A channel's place in its site (guarded by the site map's lock).
struct ChannelSlot {
    channel: Arc<Channel>,
    subscribers: usize,
    /// Its key in `unwatched`, while it has no subscribers.
    stamp: u64,
    /// The last publish, or the moment its last subscriber left.
    last_used: Instant,
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
    name: Arc<str>,
    /// The site's history, which this channel's is part of.
    history: Arc<Mutex<SiteHistory>>,
    state: Mutex<ChannelState>,
}

struct ChannelState {
    /// Set (under both locks) when the channel leaves the site map; a
    /// publisher holding a stale `Arc` then looks it up again.
    removed: bool,
    last_id: Option<u64>,
    /// Presence members: client id → info.
    members: BTreeMap<u64, Value>,
    /// Each subscriber's queue, by client id (a subscriber cut off for
    /// falling behind is no longer here, but still counts until it leaves).
    outboxes: Vec<(u64, Outbox)>,
}

impl ChannelState {
    /// Offers `frame` to every subscriber; returns how many were cut off
    /// for falling a whole queue behind.
    fn fan_out(&mut self, frame: &Message) -> usize {
        let mut cut_off = 0;
        self.outboxes
            .retain(|(_, outbox)| match outbox.offer(frame) {
                Offered::Queued => true,
                Offered::CutOff => {
                    cut_off += 1;
                    false
                }
                Offered::Gone => false,
            });
        cut_off
    }
}

impl SiteChannels {
    fn channel(&self, name: &str) -> Option<Arc<Channel>> {
        self.channels.get(name).map(|slot| slot.channel.clone())
    }

    /// Notes a use of `name`: it becomes the most recently used.
    fn touch(&mut self, name: &str) {
        let Some(slot) = self.channels.get_mut(name) else {
            return;
        };
        slot.last_used = Instant::now();
        if slot.subscribers == 0 {
            self.unwatched.remove(&slot.stamp);
            slot.stamp = self.next_stamp;
            self.next_stamp += 1;
            self.unwatched.insert(slot.stamp, slot.channel.name.clone());
        }
    }

    /// Adds a new channel, unwatched and just used.
    fn insert(&mut self, channel: Arc<Channel>) {
        let name = channel.name.clone();
        let slot = ChannelSlot {
            channel,
            subscribers: 0,
            stamp: self.next_stamp,
            last_used: Instant::now(),
        };
        self.next_stamp += 1;
        self.unwatched.insert(slot.stamp, name.clone());
        self.channels.insert(name, slot);
    }

    /// One more subscriber on `name` (which exists).
    fn watch(&mut self, name: &str) {
        let slot = self.channels.get_mut(name).expect("a channel in the map");
        if slot.subscribers == 0 {
            self.unwatched.remove(&slot.stamp);
        }
        slot.subscribers += 1;
    }

    /// One subscriber fewer on `name`; returns how many are left.
    fn unwatch(&mut self, name: &str) -> usize {
        let Some(slot) = self.channels.get_mut(name) else {
            return 0;
        };
        slot.subscribers = slot.subscribers.saturating_sub(1);
        let left = slot.subscribers;
        if left == 0 {
            self.touch(name);
        }
        left
    }

    /// Drops a channel and its history; returns what that held, roughly.
    fn drop_channel(&mut self, name: &str) -> usize {
        let Some(slot) = self.channels.remove(name) else {
            return 0;
        };
        if slot.subscribers == 0 {
            self.unwatched.remove(&slot.stamp);
        }
        slot.channel.state.lock().expect("channel lock").removed = true;
        CHANNEL_COST + self.history.lock().expect("history lock").close(name)
    }

    /// Makes room for one more channel under `max` by dropping the least
    /// recently used unwatched ones; false if every channel has subscribers.
    fn make_room(&mut self, max: usize) -> bool {
        while self.channels.len() >= max {
            let Some((_, lru)) = self.unwatched.first_key_value() else {
                return false;
            };
            let lru = lru.clone();
            self.drop_channel(&lru);
        }
        true
    }

    /// Roughly what the site's channels and their history hold.
    fn held_bytes(&self) -> usize {
        self.channels.len() * CHANNEL_COST + self.history.lock().expect("history lock").bytes()
    }

    /// After a flood has gone, the maps' emptied capacity is given back.
    fn shrink(&mut self) {
        if self.channels.capacity() > 64 && self.channels.capacity() > 4 * self.channels.len() {
            self.channels.shrink_to_fit();
        }
        self.history.lock().expect("history lock").shrink();
    }
}

impl RealtimeLimits {
    fn history_bounds(&self) -> HistoryBounds {
        HistoryBounds {
            messages: self.history,
            channel_bytes: self.history_bytes_per_channel,
            site_bytes: self.history_bytes_per_site,
        }
    }
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
    /// get it in id order; it is kept in the channel's history. Clients,
    /// functions (`fazt.realtime.publish`) and operators all come here, so
    /// the same bounds hold whoever publishes.
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
            let Some(ch) = self.channel_to_publish_on(site, channel, &limits)? else {
                return Ok(self.next_id.fetch_add(1, Ordering::Relaxed));
            };
            let mut st = ch.state.lock().expect("channel lock");
            if st.removed {
                continue;
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let frame = frames::message(channel, id, ts, data);
            st.last_id = Some(id);
            let trimmed = ch.history.lock().expect("history lock").keep(
                &ch.name,
                id,
                &frame,
                &limits.history_bounds(),
            );
            // Under the channel lock, so ids reach subscribers in order and a
            // subscriber's history snapshot and live stream meet exactly.
            let cut_off = st.fan_out(&frame);
            drop(st);
            if trimmed {
                self.refusals.record(
                    Refusal::RealtimeHistoryTrimmed,
                    format_args!("site {site}, channel {channel}"),
                );
            }
            self.record_cut_off(cut_off, site, channel);
            return Ok(id);
        }
    }

    /// How many connections are subscribed to a site's channel.
    pub fn count(&self, site: &str, channel: &str) -> usize {
        let sites = self.sites.lock().expect("hub lock");
        sites
            .get(site)
            .and_then(|s| s.channels.get(channel))
            .map_or(0, |slot| slot.subscribers)
    }

    /// The members of a site's presence channel: `[{id, info}]`.
    pub fn presence(&self, site: &str, channel: &str) -> Vec<Value> {
        let ch = {
            let sites = self.sites.lock().expect("hub lock");
            sites.get(site).and_then(|s| s.channel(channel))
        };
        ch.map(|ch| {
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
            for slot in site.channels.values() {
                stats.subscriptions += slot.subscribers as u64;
            }
        }
        stats
    }

    /// Drops every channel nobody subscribes to and nobody published on for
    /// `channel_idle`, with its history, and forgets sites left with no
    /// channels and no connections. Run periodically (`sweep.rs`).
    pub fn sweep(&self) -> Swept {
        let idle = self.limits().channel_idle;
        let now = Instant::now();
        let mut swept = Swept::default();
        let mut sites = self.sites.lock().expect("hub lock");
        for entry in sites.values_mut() {
            // Unwatched channels are in order of last use: stop at the
            // first one used recently.
            while let Some((_, name)) = entry.unwatched.first_key_value() {
                let last_used = entry.channels.get(name).map(|slot| slot.last_used);
                if last_used.is_some_and(|at| now.duration_since(at) < idle) {
                    break;
                }
                let name = name.clone();
                entry.drop_channel(&name);
                swept.expired += 1;
            }
            if swept.expired > 0 {
                entry.shrink();
            }
            swept.held_bytes += entry.held_bytes();
        }
        sites.retain(|_, entry| entry.connections > 0 || !entry.channels.is_empty());
        if sites.capacity() > 64 && sites.capacity() > 4 * sites.len() {
            sites.shrink_to_fit();
        }
        swept
    }

    /// Registers a new connection to `site`, within the per-site limit.
    pub fn connect(self: &Arc<Self>, site: &str) -> Result<ClientHandle, RealtimeError> {
        let limit = self.limits().max_connections_per_site;
        let mut sites = self.sites.lock().expect("hub lock");
        let entry = sites.entry(site.to_string()).or_default();
        if entry.connections >= limit {
            drop(sites);
            self.refusals.record(
                Refusal::RealtimeConnectionsFull,
                format_args!("site {site}"),
            );
            return Err(RealtimeError::TooManyConnections { limit });
        }
        entry.connections += 1;
        self.connections.fetch_add(1, Ordering::Relaxed);
        Ok(ClientHandle {
            hub: self.clone(),
            site: site.to_string(),
            id: self.next_client.fetch_add(1, Ordering::Relaxed),
            channels: HashMap::new(),
            budget: queue::Budget::new(self.limits().queue_bytes),
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
        for (_, slot) in entry.channels.drain() {
            slot.channel.state.lock().expect("channel lock").removed = true;
        }
        entry.unwatched.clear();
        *entry.history.lock().expect("history lock") = SiteHistory::default();
        std::mem::replace(&mut entry.removed, watch::channel(false).0).send_replace(true);
        if entry.connections == 0 {
            sites.remove(site);
        }
    }

    /// The daemon's shutdown, which connection tasks are spawned on.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// The channel to publish on: found (and noted as used), or created if
    /// history is kept (otherwise nobody would ever see the message).
    fn channel_to_publish_on(
        &self,
        site: &str,
        channel: &str,
        limits: &RealtimeLimits,
    ) -> Result<Option<Arc<Channel>>, RealtimeError> {
        let mut sites = self.sites.lock().expect("hub lock");
        if let Some(entry) = sites.get_mut(site) {
            if let Some(ch) = entry.channel(channel) {
                entry.touch(channel);
                return Ok(Some(ch));
            }
        }
        if limits.history == 0 {
            return Ok(None);
        }
        let entry = sites.entry(site.to_string()).or_default();
        let created = self.create(entry, channel, limits);
        drop(sites);
        self.record_refusal(site, &created);
        created.map(Some)
    }

    /// A new channel in `site`, displacing the least recently used
    /// unwatched one if the site is full.
    fn create(
        &self,
        site: &mut SiteChannels,
        channel: &str,
        limits: &RealtimeLimits,
    ) -> Result<Arc<Channel>, RealtimeError> {
        if !site.make_room(limits.max_channels_per_site) {
            return Err(RealtimeError::TooManyChannels {
                limit: limits.max_channels_per_site,
            });
        }
        let name: Arc<str> = channel.into();
        // Every id handed out so far came before this channel.
        let forgotten_up_to = self.next_id.load(Ordering::Relaxed).saturating_sub(1);
        site.history
            .lock()
            .expect("history lock")
            .open(&name, forgotten_up_to);
        let ch = Arc::new(Channel {
            name,
            history: site.history.clone(),
            state: Mutex::new(ChannelState {
                removed: false,
                last_id: None,
                members: BTreeMap::new(),
                outboxes: Vec::new(),
            }),
        });
        site.insert(ch.clone());
        Ok(ch)
    }

    /// Counts a refusal the client is about to be told of.
    fn record_refusal<T>(&self, site: &str, result: &Result<T, RealtimeError>) {
        if let Err(RealtimeError::TooManyChannels { .. }) = result {
            self.refusals
                .record(Refusal::RealtimeChannelsFull, format_args!("site {site}"));
        }
    }

    fn record_cut_off(&self, cut_off: usize, site: &str, channel: &str) {
        for _ in 0..cut_off {
            self.refusals.record(
                Refusal::RealtimeSlowClient,
                format_args!("site {site}, channel {channel}"),
            );
        }
    }

    fn subscribe(
        &self,
        site: &str,
        channel: &str,
        client: u64,
        budget: &Arc<queue::Budget>,
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
        let ch = match entry.channel(channel) {
            Some(ch) => ch,
            None => match self.create(entry, channel, &limits) {
                Ok(ch) => ch,
                Err(err) => {
                    drop(sites);
                    let err = Err(err);
                    self.record_refusal(site, &err);
                    return err;
                }
            },
        };
        entry.watch(channel);
        let mut st = ch.state.lock().expect("channel lock");
        let mut cut_off = 0;
        if let Some(info) = info {
            // Sent before this client's queue exists: others see the join,
            // the client itself sees the members list instead.
            let join = frames::presence_change(channel, "join", frames::member(client, &info));
            cut_off = st.fan_out(&join);
            st.members.insert(client, info);
        }
        let (outbox, rx) = queue::queue(limits.queue_messages, budget);
        st.outboxes.push((client, outbox));
        let replay = match since {
            Some(since) => ch
                .history
                .lock()
                .expect("history lock")
                .replay(channel, since),
            None => Replay::default(),
        };
        let members = presence.then(|| {
            st.members
                .iter()
                .map(|(id, info)| frames::member(*id, info))
                .collect()
        });
        let subscription = Subscription {
            rx,
            replay: replay.messages,
            missed: replay.missed,
            last_id: st.last_id,
            members,
        };
        drop(st);
        drop(sites);
        self.record_cut_off(cut_off, site, channel);
        Ok((subscription, ch))
    }

    /// `ch` is the channel the client subscribed to: if it has left the
    /// site's map since (the site was removed), a channel of the same name
    /// there now is another one, and is left alone.
    fn unsubscribe(&self, site: &str, channel: &str, ch: &Arc<Channel>, client: u64) {
        let mut sites = self.sites.lock().expect("hub lock");
        let mut st = ch.state.lock().expect("channel lock");
        st.outboxes.retain(|(id, _)| *id != client);
        let mut cut_off = 0;
        if let Some(info) = st.members.remove(&client) {
            let leave = frames::presence_change(channel, "leave", frames::member(client, &info));
            cut_off = st.fan_out(&leave);
        }
        let removed = st.removed;
        drop(st);
        if !removed {
            if let Some(entry) = sites.get_mut(site) {
                // Nobody listens and nothing is kept: nothing to wait for.
                let keeps_nothing = || ch.history.lock().expect("history lock").is_empty(channel);
                if entry.unwatch(channel) == 0 && keeps_nothing() {
                    entry.drop_channel(channel);
                }
            }
        }
        drop(sites);
        self.record_cut_off(cut_off, site, channel);
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
    /// The bytes of frames waiting for this connection, all channels together.
    budget: Arc<queue::Budget>,
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
        let (sub, ch) =
            self.hub
                .subscribe(&self.site, channel, self.id, &self.budget, since, info)?;
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

    /// The next frame waiting in a subscriber's queue.
    fn next_frame(rx: &mut Inbox) -> Message {
        match rx.try_recv() {
            Ok(queue::Delivery::Frame(m)) => m.into_message(),
            other => panic!("expected a frame, got {other:?}"),
        }
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
        assert_eq!(id_of(&next_frame(&mut sub.rx)), next);
    }

    #[test]
    fn sites_are_isolated_and_counts_follow_handles() {
        let hub = hub();
        let mut a = hub.connect("a").unwrap();
        let mut b = hub.connect("b").unwrap();
        let mut sa = a.subscribe("c", None, None).unwrap();
        let mut sb = b.subscribe("c", None, None).unwrap();
        hub.publish("a", "c", &json!("for a")).unwrap();
        next_frame(&mut sa.rx);
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
        let join: Value = serde_json::from_str(next_frame(&mut sa.rx).to_text().unwrap()).unwrap();
        assert_eq!(join["event"], "join");
        assert_eq!(join["member"]["info"]["name"], "bob");
        assert_eq!(hub.presence("s", "presence-r").len(), 2);
        drop(b);
        let leave: Value = serde_json::from_str(next_frame(&mut sa.rx).to_text().unwrap()).unwrap();
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

    fn hub_with(limits: RealtimeLimits) -> Arc<ChannelHub> {
        Arc::new(ChannelHub::new(limits, Shutdown::new(), Default::default()))
    }

    #[test]
    fn a_full_site_gives_the_least_recently_used_unwatched_channel_away() {
        let hub = hub_with(RealtimeLimits {
            max_channels_per_site: 3,
            ..Default::default()
        });
        let mut watcher = hub.connect("s").unwrap();
        watcher.subscribe("watched", None, None).unwrap();
        let first = hub.publish("s", "one", &json!(1)).unwrap();
        hub.publish("s", "two", &json!(2)).unwrap();
        // "one" is used again: "two" is now the least recently used.
        hub.publish("s", "one", &json!(1)).unwrap();
        // The site is full; a flood of new channels keeps going, each
        // displacing the least recently used unwatched one.
        hub.publish("s", "three", &json!(3)).unwrap();
        assert_eq!(hub.stats().channels, 3);
        let mut late = hub.connect("s").unwrap();
        let sub = late.subscribe("one", Some(first - 1), None).unwrap();
        assert_eq!(sub.replay.len(), 2, "one kept its history");
        // (Subscribing creates "two" again, displacing "three".)
        let sub = late.subscribe("two", Some(0), None).unwrap();
        assert!(sub.replay.is_empty(), "two was dropped with its history");
        late.unsubscribe("two").unwrap();
        assert_eq!(
            hub.stats().channels,
            2,
            "an empty channel nobody watches goes at once"
        );
        for i in 0..100 {
            hub.publish("s", &format!("flood-{i}"), &json!(i)).unwrap();
        }
        assert_eq!(hub.stats().channels, 3);
        assert_eq!(
            hub.count("s", "watched"),
            1,
            "a watched channel is never displaced"
        );
        assert_eq!(hub.count("s", "one"), 1);

        // Every channel watched: a new one is refused, and counted.
        late.subscribe("flood-99", None, None).unwrap();
        assert_eq!(
            hub.publish("s", "another", &json!(0)),
            Err(RealtimeError::TooManyChannels { limit: 3 })
        );
        assert!(matches!(
            watcher.subscribe("another", None, None),
            Err(RealtimeError::TooManyChannels { .. })
        ));
        assert_eq!(hub.refusals.count(Refusal::RealtimeChannelsFull), 2);
        // One leaves: its channel (with history) is unwatched, and gives way.
        drop(late);
        hub.publish("s", "another", &json!(0)).unwrap();
        assert_eq!(hub.stats().channels, 3);
    }

    #[test]
    fn idle_unwatched_channels_expire_with_their_history() {
        let hub = hub_with(RealtimeLimits {
            channel_idle: Duration::ZERO,
            ..Default::default()
        });
        let mut a = hub.connect("s").unwrap();
        a.subscribe("live", None, None).unwrap();
        hub.publish("s", "live", &json!("kept while watched"))
            .unwrap();
        for i in 0..300 {
            hub.publish("s", &format!("c{i}"), &json!("x".repeat(1000)))
                .unwrap();
        }
        let before = hub.sweep();
        assert_eq!(before.expired, 300);
        assert_eq!(hub.stats().channels, 1, "the watched channel stays");
        assert!(before.held_bytes < 2 * (CHANNEL_COST + 2000), "{before:?}");
        // Once nobody watches, it goes too, and so does the empty site.
        drop(a);
        assert_eq!(hub.sweep().expired, 1);
        assert_eq!(hub.stats().channels, 0);
        assert!(hub.sites.lock().unwrap().is_empty());

        // Not yet idle: kept.
        hub.set_limits(RealtimeLimits::default());
        hub.publish("s", "fresh", &json!(1)).unwrap();
        assert_eq!(hub.sweep().expired, 0);
        assert_eq!(hub.stats().channels, 1);
    }

    #[test]
    fn history_is_bounded_in_bytes_per_site_and_trimming_is_counted() {
        let limits = RealtimeLimits {
            history: 1000,
            history_bytes_per_channel: 64 * 1024,
            history_bytes_per_site: 256 * 1024,
            max_frame_bytes: 64 * 1024,
            ..Default::default()
        };
        let hub = hub_with(limits);
        let big = json!("x".repeat(10_000));
        for i in 0..1000 {
            hub.publish("s", &format!("c{}", i % 50), &big).unwrap();
        }
        let held = hub.sweep().held_bytes;
        assert!(
            held <= 256 * 1024 + 50 * CHANNEL_COST,
            "history holds {held} bytes"
        );
        assert!(
            held > 200 * 1024,
            "the site bound is used, not wasted: {held}"
        );
        assert!(hub.refusals.count(Refusal::RealtimeHistoryTrimmed) > 0);
        // The newest are what is kept: the last channel published on keeps
        // its last message, and a subscriber from the start hears of the gap.
        let mut c = hub.connect("s").unwrap();
        let sub = c.subscribe("c49", Some(0), None).unwrap();
        assert!(sub.missed);
        assert_eq!(sub.replay.len(), 1, "the site bound left c49 its newest");
        assert_eq!(id_of(sub.replay.last().unwrap()), sub.last_id.unwrap());
    }

    #[test]
    fn a_subscriber_a_whole_queue_behind_is_told_and_counted() {
        let hub = hub_with(RealtimeLimits {
            queue_messages: 2,
            ..Default::default()
        });
        let mut slow = hub.connect("s").unwrap();
        let mut sub = slow.subscribe("c", None, None).unwrap();
        let mut fast = hub.connect("s").unwrap();
        let mut fast_sub = fast.subscribe("c", None, None).unwrap();
        for i in 0..5 {
            hub.publish("s", "c", &json!(i)).unwrap();
            next_frame(&mut fast_sub.rx);
        }
        next_frame(&mut sub.rx);
        next_frame(&mut sub.rx);
        assert!(matches!(sub.rx.try_recv(), Ok(queue::Delivery::Lagged)));
        assert!(sub.rx.try_recv().is_err(), "nothing after the notice");
        assert_eq!(hub.refusals.count(Refusal::RealtimeSlowClient), 1);
        // It still counts until its connection leaves.
        assert_eq!(hub.count("s", "c"), 2);
        drop(slow);
        assert_eq!(hub.count("s", "c"), 1);
    }
}
