//! Rate limits (the `governor` crate's keyed GCRA limiters): login attempts
//! per account and per client IP (brute force), registrations per IP, message
//! sends and uploads per user. Exceeding one is a 429 with `Retry-After` (an
//! `error` frame with code `rate_limited` on the WebSocket). A rate of 0
//! turns a limit off.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::{AppError, AppResult};
use crate::model::UserId;

/// Configured rates (events per period); 0 = unlimited.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// Login attempts per account per minute (per IP: 12 times this).
    pub login_per_minute: u32,
    /// Registrations per IP per hour.
    pub register_per_hour: u32,
    /// Messages per user per second (bursts of 10 seconds' worth).
    pub send_per_second: u32,
    /// Uploads per user per minute.
    pub upload_per_minute: u32,
}

struct Limiter<K: Hash + Eq + Clone> {
    inner: Option<DefaultKeyedRateLimiter<K>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(quota: Option<Quota>) -> Self {
        Limiter {
            inner: quota.map(RateLimiter::keyed),
        }
    }

    fn check(&self, key: &K) -> AppResult<()> {
        let Some(limiter) = &self.inner else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            AppError::RateLimited {
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }

    fn forget_idle(&self) {
        if let Some(limiter) = &self.inner {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

fn quota(per: fn(NonZeroU32) -> Quota, rate: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(rate)?;
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Some(per(rate).allow_burst(burst))
}

/// The bucket of a client address (`None`: no per-IP budget, see
/// `http::auth::client_ip`). An IPv6 client usually holds a whole /64, so
/// all of it is one client; IPv4 addresses are their own bucket.
pub fn ip_bucket(ip: IpAddr) -> IpAddr {
    match crate::config::canonical_ip(ip) {
        IpAddr::V6(v6) => {
            let mut seg = v6.segments();
            seg[4..].fill(0);
            IpAddr::V6(seg.into())
        }
        v4 => v4,
    }
}

fn client(ip: Option<IpAddr>) -> Option<IpAddr> {
    ip.map(ip_bucket)
}

/// All limiters of one app.
pub struct Limits {
    login_account: Limiter<String>,
    login_ip: Limiter<IpAddr>,
    register_ip: Limiter<IpAddr>,
    send: Limiter<UserId>,
    upload: Limiter<UserId>,
    hashing: crate::auth::HashSlots,
    decode_budget: tokio::sync::Semaphore,
}

impl Limits {
    /// Limiters for these rates.
    pub fn new(r: Rates) -> Self {
        Limits {
            login_account: Limiter::new(quota(
                Quota::per_minute,
                r.login_per_minute,
                r.login_per_minute,
            )),
            login_ip: Limiter::new(quota(
                Quota::per_minute,
                r.login_per_minute.saturating_mul(12),
                r.login_per_minute.saturating_mul(12),
            )),
            register_ip: Limiter::new(quota(
                Quota::per_hour,
                r.register_per_hour,
                r.register_per_hour.min(100),
            )),
            send: Limiter::new(quota(
                Quota::per_second,
                r.send_per_second,
                r.send_per_second.saturating_mul(10),
            )),
            upload: Limiter::new(quota(
                Quota::per_minute,
                r.upload_per_minute,
                r.upload_per_minute,
            )),
            hashing: crate::auth::HashSlots::default(),
            decode_budget: tokio::sync::Semaphore::new(crate::files::DECODE_BUDGET_MIB as usize),
        }
    }

    /// MiB that image decodes may still take (see `files::make_preview`).
    pub fn decode_budget(&self) -> &tokio::sync::Semaphore {
        &self.decode_budget
    }

    /// The password-hashing slots and their bounded queue.
    pub fn hashing(&self) -> &crate::auth::HashSlots {
        &self.hashing
    }

    /// A login attempt for `email` from `ip`.
    pub fn login(&self, email: &str, ip: Option<IpAddr>) -> AppResult<()> {
        if let Some(ip) = client(ip) {
            self.login_ip.check(&ip)?;
        }
        self.login_account.check(&email.trim().to_lowercase())
    }

    /// A registration from `ip`.
    pub fn register(&self, ip: Option<IpAddr>) -> AppResult<()> {
        match client(ip) {
            Some(ip) => self.register_ip.check(&ip),
            None => Ok(()),
        }
    }

    /// A message from `user`.
    pub fn send(&self, user: UserId) -> AppResult<()> {
        self.send.check(&user)
    }

    /// An upload from `user`.
    pub fn upload(&self, user: UserId) -> AppResult<()> {
        self.upload.check(&user)
    }

    /// Drops state of keys that are back to full quota (bounded memory).
    pub fn forget_idle(&self) {
        self.login_account.forget_idle();
        self.login_ip.forget_idle();
        self.register_ip.forget_idle();
        self.send.forget_idle();
        self.upload.forget_idle();
    }
}

/// Runs [`Limits::forget_idle`] every minute until the app is dropped.
pub fn start_cleanup(state: crate::state::WeakState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let Some(state) = state.upgrade() else { break };
            state.limits().forget_idle();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_limits() {
        let limits = Limits::new(Rates {
            login_per_minute: 3,
            register_per_hour: 0,
            send_per_second: 2,
            upload_per_minute: 1,
        });
        let sent = (0..40).filter(|_| limits.send(UserId(7)).is_ok()).count();
        assert!((20..=21).contains(&sent), "{sent}");
        assert!(limits.send(UserId(8)).is_ok(), "per user");
        let logins = (0..10)
            .filter(|_| limits.login("A@x.io", None).is_ok())
            .count();
        assert_eq!(logins, 3);
        assert!(
            limits.login("a@X.io", None).is_err(),
            "case-insensitive key"
        );
        assert!(
            limits.register(Some([127, 0, 0, 1].into())).is_ok(),
            "0 = off"
        );
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(ip_bucket(a), ip_bucket(b), "one /64, one client");
        assert_ne!(
            ip_bucket(a),
            ip_bucket("2001:db8:1:3::1".parse().unwrap()),
            "another /64"
        );
        match limits
            .upload(UserId(1))
            .and_then(|_| limits.upload(UserId(1)))
        {
            Err(AppError::RateLimited { retry_after_secs }) => {
                assert!((1..=60).contains(&retry_after_secs))
            }
            other => panic!("{other:?}"),
        }
    }
}
