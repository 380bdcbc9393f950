//! One loaded version of a plugin: its compiled component, its `plugin-info`, and a small pool
//! of warm instances (one `Store` each). A call borrows an instance, runs under an epoch
//! deadline and a memory cap, and returns it; an instance whose call failed is thrown away.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use parking_lot::Mutex;
use tokio::sync::Semaphore;
use wasmtime::component::{HasSelf, InstancePre, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use super::bindings::{
    authn, authz, enhanced_authn, events, lifecycle, message, wit, HookSet, Plugin as PluginWorld,
};
use super::engine::EPOCH_TICK;
use super::filters::PublishFilters;
use super::host::{MemoryLimit, StoreState};
use super::kv::KvGrants;
use super::sqlite::SqlGrants;
use super::wasi;

/// Warm instances kept per plugin version (and so the calls that run at once).
const POOL_SIZE: usize = 4;
/// An instance is replaced after this many calls, bounding leaks inside the guest.
const MAX_CALLS_PER_INSTANCE: u64 = 1_000_000;
/// Longest `init` may take, whatever the plugin's `timeout_ms`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong in a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Timeout,
    OutOfMemory,
    Trap,
    /// No instance could be made (instantiation or `init` failed).
    Unavailable,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::OutOfMemory => "out of memory",
            FailureKind::Trap => "trap",
            FailureKind::Unavailable => "unavailable",
        }
    }
}

#[derive(Debug)]
pub struct Failure {
    pub kind: FailureKind,
    pub error: anyhow::Error,
}

/// Everything needed to make instances of a version.
pub struct VersionSpec {
    pub name: Arc<str>,
    pub hash: String,
    pub config_json: String,
    pub memory_bytes: usize,
    pub sql: SqlGrants,
    pub kv: KvGrants,
}

/// A loaded, initialised plugin version.
pub struct PluginVersion {
    pub spec: VersionSpec,
    pub info: lifecycle::PluginInfo,
    /// `info.authorize_publish_filters`, compiled.
    pub publish_filters: PublishFilters,
    engine: Engine,
    pre: InstancePre<StoreState>,
    exports: Exports,
    idle: Mutex<Vec<Warm>>,
    permits: Semaphore,
}

/// Which optional interfaces the component exports.
struct Exports {
    lifecycle: lifecycle::GuestIndices,
    authn: Option<authn::GuestIndices>,
    enhanced_authn: Option<enhanced_authn::GuestIndices>,
    authz: Option<authz::GuestIndices>,
    message: Option<message::GuestIndices>,
    events: Option<events::GuestIndices>,
}

/// A live instance with its exports resolved.
struct Warm {
    store: Store<StoreState>,
    authn: Option<authn::Guest>,
    enhanced_authn: Option<enhanced_authn::Guest>,
    authz: Option<authz::Guest>,
    message: Option<message::Guest>,
    events: Option<events::Guest>,
    calls: u64,
}

/// One hook call, with its arguments.
#[derive(Clone, Copy)]
pub enum Call<'a> {
    Authenticate {
        client: &'a wit::ClientInfo,
        password: Option<&'a [u8]>,
    },
    AuthorizePublish {
        client: &'a wit::ClientInfo,
        topic: &'a str,
        qos: wit::Qos,
        retain: bool,
    },
    AuthorizeSubscribe {
        client: &'a wit::ClientInfo,
        filter: &'a str,
        qos: wit::Qos,
    },
    Message {
        client: &'a wit::ClientInfo,
        topic: &'a str,
        payload: &'a [u8],
        qos: wit::Qos,
        retain: bool,
    },
    Connected {
        client: &'a wit::ClientInfo,
    },
    Disconnected {
        client: &'a wit::ClientInfo,
        reason: &'a str,
    },
    Subscribed {
        client: &'a wit::ClientInfo,
        filter: &'a str,
        qos: wit::Qos,
    },
    Unsubscribed {
        client: &'a wit::ClientInfo,
        filter: &'a str,
    },
    SessionExpired {
        client_id: &'a str,
    },
    AuthStart {
        client: &'a wit::ClientInfo,
        method: &'a str,
        data: Option<&'a [u8]>,
        reauth: bool,
    },
    AuthContinue {
        client: &'a wit::ClientInfo,
        method: &'a str,
        data: Option<&'a [u8]>,
        state: &'a [u8],
    },
}

/// What a call answered.
pub enum Answer {
    Decision(wit::Decision),
    Verdict(message::Verdict),
    AuthStep(enhanced_authn::AuthStep),
    Done,
}

impl PluginVersion {
    /// Type-checks the component against the contract, makes one instance and runs `init`.
    pub async fn load(
        engine: &Engine,
        component: &wasmtime::component::Component,
        spec: VersionSpec,
    ) -> anyhow::Result<PluginVersion> {
        // Imports outside the contract and WASI (`wasi:http`, a future WASI) are defined to
        // trap if called, but only when the component needs it: wasmtime's stubbing defines the
        // exact import name, which would shadow the semver-compatible WASI the host provides
        // (a guest importing `wasi:cli/environment@0.2.9` is served by the host's 0.2.x).
        let pre = match plugin_linker(engine)?.instantiate_pre(component) {
            Ok(pre) => pre,
            Err(_) => {
                let mut linker = plugin_linker(engine)?;
                linker.define_unknown_imports_as_traps(component)?;
                linker
                    .instantiate_pre(component)
                    .map_err(anyhow::Error::from)
                    .context("the component does not fit the waspmq:plugin contract")?
            }
        };
        let exports = Exports {
            lifecycle: lifecycle::GuestIndices::new(&pre)
                .map_err(anyhow::Error::from)
                .context("the component does not export waspmq:plugin/lifecycle")?,
            authn: authn::GuestIndices::new(&pre).ok(),
            enhanced_authn: enhanced_authn::GuestIndices::new(&pre).ok(),
            authz: authz::GuestIndices::new(&pre).ok(),
            message: message::GuestIndices::new(&pre).ok(),
            events: events::GuestIndices::new(&pre).ok(),
        };
        let mut version = PluginVersion {
            spec,
            info: lifecycle::PluginInfo {
                name: String::new(),
                version: String::new(),
                hooks: HookSet::empty(),
                message_filters: Vec::new(),
                authorize_publish_filters: Vec::new(),
            },
            publish_filters: PublishFilters::default(),
            engine: engine.clone(),
            pre,
            exports,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(POOL_SIZE),
        };
        let (warm, info) = version.instantiate().await?;
        version.publish_filters = PublishFilters::compile(&info.authorize_publish_filters)?;
        version.info = info;
        version.check_hooks_exported()?;
        version.idle.lock().push(warm);
        Ok(version)
    }

    /// Whether the plugin asked for `hook` (and exports its interface).
    pub fn wants(&self, hook: HookSet) -> bool {
        self.info.hooks.contains(hook)
    }

    /// Whether the plugin wants `authorize-publish` called for a PUBLISH to `topic`: it set
    /// the flag and `topic` matches its `authorize-publish-filters` (or it declared none).
    pub fn asks_about_publish(&self, topic: &str) -> bool {
        self.wants(HookSet::AUTHORIZE_PUBLISH) && self.publish_filters.matches(topic)
    }

    fn check_hooks_exported(&self) -> anyhow::Result<()> {
        let hooks = self.info.hooks;
        let missing = |flags: HookSet, present: bool, iface: &str| -> anyhow::Result<()> {
            if hooks.intersects(flags) && !present {
                bail!("plugin declares {flags:?} but does not export waspmq:plugin/{iface}");
            }
            Ok(())
        };
        missing(HookSet::AUTHENTICATE, self.exports.authn.is_some(), "authn")?;
        missing(
            HookSet::ENHANCED_AUTHENTICATE,
            self.exports.enhanced_authn.is_some(),
            "enhanced-authn",
        )?;
        missing(
            HookSet::AUTHORIZE_PUBLISH | HookSet::AUTHORIZE_SUBSCRIBE,
            self.exports.authz.is_some(),
            "authz",
        )?;
        missing(HookSet::MESSAGE, self.exports.message.is_some(), "message")?;
        missing(
            HookSet::CONNECTED
                | HookSet::DISCONNECTED
                | HookSet::SUBSCRIBED
                | HookSet::UNSUBSCRIBED
                | HookSet::SESSION_EXPIRED,
            self.exports.events.is_some(),
            "events",
        )
    }

    /// A fresh instance: new `Store`, instantiate, resolve exports, `init`.
    async fn instantiate(&self) -> anyhow::Result<(Warm, lifecycle::PluginInfo)> {
        let state = StoreState {
            plugin: self.spec.name.clone(),
            memory: MemoryLimit {
                max_bytes: self.spec.memory_bytes,
                exceeded: false,
            },
            sql: self.spec.sql.clone(),
            kv: self.spec.kv.clone(),
            deadline: Instant::now() + INIT_TIMEOUT,
            wasi: wasi::sandbox(&self.spec.name),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        // At every epoch tick: stop the guest if its call is past its deadline, otherwise
        // yield to tokio so a long call never holds a worker thread for more than one tick.
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store.set_epoch_deadline(1);
        let instance = self.pre.instantiate_async(&mut store).await?;
        let ex = &self.exports;
        let life = ex.lifecycle.load(&mut store, &instance)?;
        let authn = ex
            .authn
            .as_ref()
            .map(|i| i.load(&mut store, &instance))
            .transpose()?;
        let enhanced_authn = ex
            .enhanced_authn
            .as_ref()
            .map(|i| i.load(&mut store, &instance))
            .transpose()?;
        let authz = ex
            .authz
            .as_ref()
            .map(|i| i.load(&mut store, &instance))
            .transpose()?;
        let message = ex
            .message
            .as_ref()
            .map(|i| i.load(&mut store, &instance))
            .transpose()?;
        let events = ex
            .events
            .as_ref()
            .map(|i| i.load(&mut store, &instance))
            .transpose()?;
        let deadline = Instant::now() + INIT_TIMEOUT;
        store.data_mut().deadline = deadline;
        store.set_epoch_deadline(1);
        let init = life.call_init(&mut store, &self.spec.config_json);
        let info = tokio::time::timeout_at(past(deadline).into(), init)
            .await
            .map_err(|_| anyhow!("init did not return within {INIT_TIMEOUT:?}"))?
            .map_err(anyhow::Error::from)
            .context("init trapped")?
            .map_err(|e| anyhow!("init refused: {e}"))?;
        let warm = Warm {
            store,
            authn,
            enhanced_authn,
            authz,
            message,
            events,
            calls: 0,
        };
        Ok((warm, info))
    }

    /// Runs one hook call on a pooled instance, within `timeout`.
    pub async fn call(&self, call: Call<'_>, timeout: Duration) -> Result<Answer, Failure> {
        let started = Instant::now();
        let permit = match self.permits.try_acquire() {
            Ok(permit) => permit,
            // Every instance is busy: wait for one, within the call's time.
            Err(_) => match tokio::time::timeout(timeout, self.permits.acquire()).await {
                Ok(Ok(permit)) => permit,
                _ => {
                    return Err(Failure {
                        kind: FailureKind::Timeout,
                        error: anyhow!("no free instance within {timeout:?}"),
                    })
                }
            },
        };
        let pooled = self.idle.lock().pop();
        let mut warm = match pooled {
            Some(warm) => warm,
            None => match self.instantiate().await {
                Ok((warm, _)) => warm,
                Err(error) => {
                    return Err(Failure {
                        kind: FailureKind::Unavailable,
                        error,
                    })
                }
            },
        };
        let deadline = started + timeout;
        warm.store.data_mut().deadline = deadline;
        warm.store.set_epoch_deadline(1);
        let outcome = bounded(past(deadline), warm.run(call)).await;
        match outcome {
            Ok(answer) => {
                warm.calls += 1;
                if warm.calls < MAX_CALLS_PER_INSTANCE {
                    self.idle.lock().push(warm);
                }
                drop(permit);
                Ok(answer)
            }
            Err(error) => {
                // The instance is dropped here: after a trap wasmtime will not re-enter it.
                let kind = if warm.store.data().memory.exceeded {
                    FailureKind::OutOfMemory
                } else if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                    FailureKind::Timeout
                } else {
                    FailureKind::Trap
                };
                Err(Failure {
                    kind,
                    error: error.into(),
                })
            }
        }
    }
}

/// The contract's imports and WASI 0.2, deny by default: no file system, network, environment
/// or arguments (see `wasi::sandbox`), for language runtimes (Python, JavaScript, C).
fn plugin_linker(engine: &Engine) -> anyhow::Result<Linker<StoreState>> {
    let mut linker: Linker<StoreState> = Linker::new(engine);
    PluginWorld::add_to_linker::<StoreState, HasSelf<StoreState>>(&mut linker, |s| s)?;
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    Ok(linker)
}

/// Runs a hook call to its end or until `deadline`. Most calls finish in their first poll
/// (the guest runs without waiting on the host), so that poll happens before any timer is
/// set up: a tokio `Timeout` fetches the runtime's time driver handle when made, per call,
/// for a timer that almost never fires. A call still pending after it
/// (waiting in a host call such as a WASI `poll` on a clock, which epoch interruption cannot
/// stop) gets the timeout; a call cut off that way leaves its instance unusable, so the
/// caller drops it, as after a trap.
async fn bounded<T>(
    deadline: Instant,
    call: impl Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    let mut call = std::pin::pin!(call);
    let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(outcome) => outcome,
        Poll::Pending => match tokio::time::timeout_at(deadline.into(), call).await {
            Ok(outcome) => outcome,
            Err(_) => Err(wasmtime::Error::from(Trap::Interrupt)),
        },
    }
}

/// A moment just past `deadline`: an overrunning guest is normally stopped by the epoch
/// callback (and reported as a timeout) first; the async timeout only catches a call that
/// waits inside the host.
fn past(deadline: Instant) -> Instant {
    deadline + 2 * EPOCH_TICK
}

impl Warm {
    async fn run(&mut self, call: Call<'_>) -> wasmtime::Result<Answer> {
        let store = &mut self.store;
        let missing = || wasmtime::Error::msg("hook not exported");
        Ok(match call {
            Call::Authenticate { client, password } => {
                let g = self.authn.as_ref().ok_or_else(missing)?;
                Answer::Decision(g.call_authenticate(store, client, password).await?)
            }
            Call::AuthorizePublish {
                client,
                topic,
                qos,
                retain,
            } => {
                let g = self.authz.as_ref().ok_or_else(missing)?;
                Answer::Decision(
                    g.call_authorize_publish(store, client, topic, qos, retain)
                        .await?,
                )
            }
            Call::AuthorizeSubscribe {
                client,
                filter,
                qos,
            } => {
                let g = self.authz.as_ref().ok_or_else(missing)?;
                Answer::Decision(
                    g.call_authorize_subscribe(store, client, filter, qos)
                        .await?,
                )
            }
            Call::Message {
                client,
                topic,
                payload,
                qos,
                retain,
            } => {
                let g = self.message.as_ref().ok_or_else(missing)?;
                Answer::Verdict(
                    g.call_on_publish(store, client, topic, payload, qos, retain)
                        .await?,
                )
            }
            Call::Connected { client } => {
                let g = self.events.as_ref().ok_or_else(missing)?;
                g.call_connected(store, client).await?;
                Answer::Done
            }
            Call::Disconnected { client, reason } => {
                let g = self.events.as_ref().ok_or_else(missing)?;
                g.call_disconnected(store, client, reason).await?;
                Answer::Done
            }
            Call::Subscribed {
                client,
                filter,
                qos,
            } => {
                let g = self.events.as_ref().ok_or_else(missing)?;
                g.call_subscribed(store, client, filter, qos).await?;
                Answer::Done
            }
            Call::Unsubscribed { client, filter } => {
                let g = self.events.as_ref().ok_or_else(missing)?;
                g.call_unsubscribed(store, client, filter).await?;
                Answer::Done
            }
            Call::SessionExpired { client_id } => {
                let g = self.events.as_ref().ok_or_else(missing)?;
                g.call_session_expired(store, client_id).await?;
                Answer::Done
            }
            Call::AuthStart {
                client,
                method,
                data,
                reauth,
            } => {
                let g = self.enhanced_authn.as_ref().ok_or_else(missing)?;
                Answer::AuthStep(
                    g.call_auth_start(store, client, method, data, reauth)
                        .await?,
                )
            }
            Call::AuthContinue {
                client,
                method,
                data,
                state,
            } => {
                let g = self.enhanced_authn.as_ref().ok_or_else(missing)?;
                Answer::AuthStep(
                    g.call_auth_continue(store, client, method, data, state)
                        .await?,
                )
            }
        })
    }
}
