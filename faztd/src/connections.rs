//! How many client connections are open, in total and per client address,
//! and the caps on both: each connection holds a file descriptor and up to
//! a request head's worth of buffer, so one client opening thousands must
//! not lock everyone else out.
//!
//! A connection that gets a [`Slot`] counts until every clone of it is
//! dropped: the HTTP layer holds one for the connection's life and puts a
//! clone in each request's extensions, so a WebSocket that outlives its
//! upgrade request keeps counting.
//!
//! Addresses are counted per IPv4 address and per IPv6 /64 (one host
//! usually holds a whole /64, so counting single IPv6 addresses would not
//! cap anything).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The caps; `0` means none (the default: no caps).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub total: usize,
    pub per_address: usize,
}

/// Why a connection was not given a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    Total,
    PerAddress,
}

/// The open connections.
pub struct Connections {
    limits: ConnectionLimits,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// One open connection's place in the count; freed when the last clone
/// goes.
#[derive(Clone)]
pub struct Slot(#[allow(dead_code)] Arc<Held>);

struct Held {
    connections: Arc<Connections>,
    key: IpAddr,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self.connections.lock();
        open.total -= 1;
        if let Some(n) = open.per_address.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.per_address.remove(&self.key);
            }
        }
        // A flood of addresses leaves a large empty map behind otherwise.
        if open.per_address.capacity() > 1024 && open.per_address.len() < 256 {
            open.per_address.shrink_to_fit();
        }
    }
}

impl Connections {
    pub fn new(limits: ConnectionLimits) -> Arc<Connections> {
        Arc::new(Connections {
            limits,
            open: Mutex::new(Open::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a connection from `addr`, unless a cap is reached.
    pub fn admit(self: &Arc<Self>, addr: IpAddr) -> Result<Slot, Full> {
        let key = address_key(addr);
        let mut open = self.lock();
        if self.limits.total != 0 && open.total >= self.limits.total {
            return Err(Full::Total);
        }
        let from_here = open.per_address.get(&key).copied().unwrap_or(0);
        if self.limits.per_address != 0 && from_here >= self.limits.per_address {
            return Err(Full::PerAddress);
        }
        open.total += 1;
        *open.per_address.entry(key).or_insert(0) += 1;
        drop(open);
        Ok(Slot(Arc::new(Held {
            connections: self.clone(),
            key,
        })))
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().total
    }
}

/// What an address is counted as: IPv4 (also when mapped into IPv6) as
/// itself, IPv6 by its /64.
fn address_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_per_address_and_in_total() {
        let c = Connections::new(ConnectionLimits {
            total: 3,
            per_address: 2,
        });
        let a1 = c.admit(ip("10.0.0.1")).unwrap();
        let _a2 = c.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(c.admit(ip("10.0.0.1")).err(), Some(Full::PerAddress));
        let _b = c.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(c.admit(ip("10.0.0.3")).err(), Some(Full::Total));
        assert_eq!(c.open(), 3);
        drop(a1);
        assert_eq!(c.open(), 2);
        assert!(c.admit(ip("10.0.0.1")).is_ok());
    }

    #[test]
    fn a_slot_counts_until_its_last_clone_goes() {
        let c = Connections::new(ConnectionLimits {
            total: 1,
            per_address: 0,
        });
        let slot = c.admit(ip("::1")).unwrap();
        let clone = slot.clone();
        drop(slot);
        assert_eq!(c.admit(ip("::1")).err(), Some(Full::Total));
        drop(clone);
        assert_eq!(c.open(), 0);
        assert!(c.admit(ip("::1")).is_ok());
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let c = Connections::new(ConnectionLimits {
            total: 0,
            per_address: 1,
        });
        let _a = c.admit(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(
            c.admit(ip("2001:db8:1:2:ffff::9")).err(),
            Some(Full::PerAddress)
        );
        assert!(c.admit(ip("2001:db8:1:3::1")).is_ok());
        let _v4 = c.admit(ip("192.0.2.7")).unwrap();
        assert_eq!(
            c.admit(ip("::ffff:192.0.2.7")).err(),
            Some(Full::PerAddress)
        );
    }

    #[test]
    fn zero_means_no_cap() {
        let c = Connections::new(ConnectionLimits {
            total: 0,
            per_address: 0,
        });
        let slots: Vec<_> = (0..1000)
            .map(|_| c.admit(ip("127.0.0.1")).unwrap())
            .collect();
        assert_eq!(c.open(), 1000);
        drop(slots);
        assert_eq!(c.open(), 0);
    }
}
