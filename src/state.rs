//! Shared application state: `Clone` around an `Arc`, handed to handlers with
//! `State<AppState>`. No globals, so one test process can run many apps.

use std::sync::{Arc, Weak};

use crate::config::Config;
use crate::db::Db;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::objects::Objects;
use crate::ops::receipts::DeliveryBatcher;
use crate::realtime::bus::Bus;
use crate::realtime::hub::Hub;

struct Inner {
    config: Config,
    db: Db,
    hub: Hub,
    bus: Bus,
    objects: Objects,
    pusher: std::sync::OnceLock<crate::push::Pusher>,
    deliveries: DeliveryBatcher,
    metrics: Metrics,
    limits: Limits,
    previews: crate::previews::Previewer,
}

/// Everything a request needs.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

impl AppState {
    /// Builds the state, single-node (`--bus local`); starts the delivery
    /// batcher (needs a tokio runtime).
    pub fn new(config: Config, db: Db) -> Self {
        AppState::with_parts(config, db, Bus::Local, Objects::Local)
    }

    /// Builds the state on `bus` (not started yet: see [`Bus::start`]),
    /// keeping files in `objects`.
    pub fn with_parts(config: Config, db: Db, bus: Bus, objects: Objects) -> Self {
        let deliveries = DeliveryBatcher::new();
        let limits = Limits::new(config.rates);
        let hub = Hub::new(config.max_sockets_per_user);
        let previews = crate::previews::Previewer::new(
            config.link_previews,
            config.link_preview_allow_private,
        );
        let state = AppState {
            inner: Arc::new(Inner {
                config,
                db,
                hub,
                bus,
                objects,
                pusher: std::sync::OnceLock::new(),
                deliveries,
                metrics: Metrics::default(),
                limits,
                previews,
            }),
        };
        state.inner.deliveries.start(state.downgrade());
        if let Some(key) = &state.inner.config.vapid {
            let pusher = crate::push::Pusher::start(
                state.downgrade(),
                key,
                state.inner.config.vapid_subject.clone(),
                state.inner.config.push_allow_private,
            );
            let _ = state.inner.pusher.set(pusher);
        }
        state
    }

    /// Validated settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The store.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// Live connections and fan-out.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// Events to and from other nodes.
    pub fn bus(&self) -> &Bus {
        &self.inner.bus
    }

    /// Web Push sending (absent only without a VAPID key).
    pub fn pusher(&self) -> Option<&crate::push::Pusher> {
        self.inner.pusher.get()
    }

    /// Where uploaded files live.
    pub fn objects(&self) -> &Objects {
        &self.inner.objects
    }

    /// Rate limiters.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Counters for `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The link preview queue.
    pub fn previews(&self) -> &crate::previews::Previewer {
        &self.inner.previews
    }

    /// Batches "message reached a device" receipts into few writes.
    pub fn deliveries(&self) -> &DeliveryBatcher {
        &self.inner.deliveries
    }
}

/// A handle that does not keep the app alive (for background tasks that
/// should end with it).
#[derive(Clone)]
pub struct WeakState(Weak<Inner>);

impl WeakState {
    /// The app, if it still runs.
    pub fn upgrade(&self) -> Option<AppState> {
        self.0.upgrade().map(|inner| AppState { inner })
    }
}

impl AppState {
    /// A non-owning handle.
    pub fn downgrade(&self) -> WeakState {
        WeakState(Arc::downgrade(&self.inner))
    }
}
