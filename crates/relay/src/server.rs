//! [`RelayServer`]: a whole relay from a [`Config`]: the store, the WSS listener, the admin
//! listener and the housekeeping tasks (expiry, metrics, certificate reload), with graceful
//! shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sealwire_transport::server::{
    AdmissionLimits, OriginPolicy, Server, ServerConfig, ServerHandle,
};
use sealwire_transport::tls::{CertificateReloader, ServerTls, fingerprint_hex};
use sealwire_transport::token::{TokenKeys, TokenVerifier};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::admin::AdminServer;
use crate::config::{Config, StoreKind};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::relay::{Relay, RelayOptions, unix_now};
use crate::store::{MemoryStore, RedbOptions, RedbStore, Store};

/// How often the stored-message and connection gauges are refreshed.
const STATS_INTERVAL: Duration = Duration::from_secs(5);
/// How often expired messages are removed.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(60);

/// Where the TLS certificate comes from.
#[derive(Debug, Clone)]
pub enum Certificate {
    /// The files in the configuration's `[tls]`, reloaded when they change.
    Files,
    /// A certificate made by the caller (for `--dev`: a fresh self-signed one).
    Fixed(ServerTls),
    /// No TLS at all (`ws://`). **Tests only.**
    InsecurePlaintextForTests,
}

/// A running relay.
#[derive(Debug)]
pub struct RelayServer {
    local_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    fingerprint: Option<[u8; 32]>,
    metrics: Metrics,
    reload: Arc<Notify>,
    stop: watch::Sender<bool>,
    supervisor: JoinHandle<()>,
}

impl RelayServer {
    /// Opens the store, binds both listeners and starts serving.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid configuration, [`Error::Storage`] if the store cannot
    /// be opened (another relay holds it, permissions), [`Error::Transport`] for certificate,
    /// key or token-key problems, [`Error::Io`] if an address cannot be bound.
    pub async fn start(config: Config, certificate: Certificate) -> Result<RelayServer> {
        let dev = !matches!(certificate, Certificate::Files);
        config.validate(dev)?;
        let metrics = Metrics::new();
        match config.store {
            StoreKind::Redb => {
                let observer = metrics.clone();
                let options = RedbOptions {
                    quotas: config.quotas.to_quotas(),
                    observer: Some(Arc::new(move |info: crate::store::CommitInfo| {
                        observer.store_commit(info.operations, info.duration);
                    })),
                    ..RedbOptions::default()
                };
                let store = RedbStore::open(&config.data_dir, options)?;
                Self::start_with(config, certificate, Arc::new(store), metrics).await
            }
            StoreKind::Memory => {
                let store = MemoryStore::new(config.quotas.to_quotas());
                Self::start_with(config, certificate, Arc::new(store), metrics).await
            }
        }
    }

    /// Like [`start`](Self::start), but with a store of the caller's, for embedding: e.g. a
    /// wrapper that records what the relay stores. `config.store` and `config.data_dir` are
    /// not used, nor `config.quotas` beyond validation (the store enforces its own); the
    /// store's commit metrics (a [`RedbStore`] observer) are not recorded.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// use sealwire_core::{OneTimePrekey, PublicIdentity, SignedPrekey};
    /// use sealwire_relay::Result;
    /// use sealwire_relay::config::Config;
    /// use sealwire_relay::server::{Certificate, RelayServer};
    /// use sealwire_relay::store::{
    ///     Appended, Expired, MemoryStore, NewMessage, Quotas, Store, StoreStats, StoredMessage,
    ///     TakenBundle,
    /// };
    /// use sealwire_transport::frame::MailboxId;
    ///
    /// /// A memory store that counts the messages it is given.
    /// struct Counting {
    ///     inner: MemoryStore,
    ///     appended: AtomicU64,
    /// }
    ///
    /// impl Store for Counting {
    ///     async fn register(&self, mailbox: MailboxId) -> Result<()> {
    ///         self.inner.register(mailbox).await
    ///     }
    ///     async fn append(&self, message: NewMessage) -> Result<Appended> {
    ///         self.appended.fetch_add(1, Ordering::Relaxed);
    ///         self.inner.append(message).await
    ///     }
    ///     async fn pending(
    ///         &self,
    ///         mailbox: MailboxId,
    ///         after: u64,
    ///         limit: usize,
    ///     ) -> Result<Vec<StoredMessage>> {
    ///         self.inner.pending(mailbox, after, limit).await
    ///     }
    ///     async fn ack(&self, mailbox: MailboxId, deliveries: Vec<u64>) -> Result<u64> {
    ///         self.inner.ack(mailbox, deliveries).await
    ///     }
    ///     async fn expire(&self, cutoff: u64) -> Result<Expired> {
    ///         self.inner.expire(cutoff).await
    ///     }
    ///     async fn put_prekeys(
    ///         &self,
    ///         mailbox: MailboxId,
    ///         identity: PublicIdentity,
    ///         signed_prekey: SignedPrekey,
    ///         one_time: Vec<OneTimePrekey>,
    ///     ) -> Result<u32> {
    ///         self.inner.put_prekeys(mailbox, identity, signed_prekey, one_time).await
    ///     }
    ///     async fn take_bundle(&self, mailbox: MailboxId) -> Result<Option<TakenBundle>> {
    ///         self.inner.take_bundle(mailbox).await
    ///     }
    ///     async fn prekey_count(&self, mailbox: MailboxId) -> Result<u32> {
    ///         self.inner.prekey_count(mailbox).await
    ///     }
    ///     async fn stats(&self) -> Result<StoreStats> {
    ///         self.inner.stats().await
    ///     }
    ///     async fn flush(&self) -> Result<()> {
    ///         self.inner.flush().await
    ///     }
    /// }
    ///
    /// # fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = tokio::runtime::Runtime::new()?;
    /// # runtime.block_on(async {
    /// let mut config = Config::default();
    /// config.listen = "127.0.0.1:0".parse()?;
    /// config.admin.enabled = false;
    /// let store = Arc::new(Counting {
    ///     inner: MemoryStore::new(Quotas::default()),
    ///     appended: AtomicU64::new(0),
    /// });
    /// let certificate = Certificate::InsecurePlaintextForTests;
    /// let relay = RelayServer::start_with_store(config, certificate, store.clone()).await?;
    /// assert_eq!(store.appended.load(Ordering::Relaxed), 0);
    /// relay.shutdown().await;
    /// # Ok(())
    /// # })
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`start`](Self::start), except that no store is opened here.
    pub async fn start_with_store<S: Store>(
        config: Config,
        certificate: Certificate,
        store: Arc<S>,
    ) -> Result<RelayServer> {
        let dev = !matches!(certificate, Certificate::Files);
        config.validate(dev)?;
        Self::start_with(config, certificate, store, Metrics::new()).await
    }

    async fn start_with<S: Store>(
        config: Config,
        certificate: Certificate,
        store: Arc<S>,
        metrics: Metrics,
    ) -> Result<RelayServer> {
        let (transport, reloader) = transport_config(&config, certificate)?;
        // (For a reloadable certificate this is the one in service now, i.e. at start.)
        let fingerprint = match &transport.security {
            sealwire_transport::server::Security::Tls(tls) => Some(tls.certificate_fingerprint()),
            _ => None,
        };
        let relay = Relay::new(
            store.clone(),
            metrics.clone(),
            RelayOptions {
                rates: config.rates,
                low_prekeys: config.prekeys.low_water,
            },
        );
        let server = Server::bind(config.listen, transport, Arc::new(relay)).await?;
        let local_addr = server.local_addr()?;
        let ready = Arc::new(AtomicBool::new(false));
        let admin = if config.admin.enabled {
            let admin =
                AdminServer::bind(config.admin.listen, metrics.clone(), ready.clone()).await?;
            Some(admin)
        } else {
            None
        };
        let admin_addr = admin.as_ref().map(AdminServer::local_addr);
        if let Some(addr) = admin_addr.filter(|addr| !addr.ip().is_loopback()) {
            tracing::warn!(%addr, "the admin listener is not on a loopback address: anyone who can reach it reads the metrics");
        }
        if config.store == StoreKind::Memory {
            tracing::warn!(
                "in-memory store: messages are lost on restart and `accepted` does not mean durable"
            );
        }
        let handle = server.spawn()?;
        ready.store(true, Ordering::Release);
        tracing::info!(
            listen = %local_addr,
            admin = %admin_addr.map_or_else(|| "off".to_owned(), |addr| addr.to_string()),
            store = ?config.store,
            certificate_sha256 = %fingerprint.map(|f| fingerprint_hex(&f)).unwrap_or_default(),
            "relay started"
        );
        let (stop, stopped) = watch::channel(false);
        let reload = Arc::new(Notify::new());
        let housekeeping = Housekeeping {
            store,
            metrics: metrics.clone(),
            retention: config.retention(),
            reloader,
            reload_interval: Duration::from_secs(config.tls.reload_interval_secs),
            reload: reload.clone(),
        };
        let admin = admin.map(AdminServer::spawn);
        let supervisor = tokio::spawn(async move {
            housekeeping.run(&handle, stopped).await;
            ready.store(false, Ordering::Release);
            tracing::info!("shutting down: closing connections");
            handle.shutdown().await;
            if let Err(error) = housekeeping.store.flush().await {
                tracing::error!(%error, "flushing the store failed");
            }
            if let Some(admin) = admin {
                admin.shutdown().await;
            }
            tracing::info!("relay stopped");
        });
        Ok(RelayServer {
            local_addr,
            admin_addr,
            fingerprint,
            metrics,
            reload,
            stop,
            supervisor,
        })
    }

    /// The WSS listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The admin listener's address, if enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The SHA-256 fingerprint of the certificate served at start (`None` without TLS).
    pub fn certificate_fingerprint(&self) -> Option<[u8; 32]> {
        self.fingerprint
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Checks the certificate files for a change now (what `SIGHUP` does).
    pub fn reload_certificate(&self) {
        self.reload.notify_one();
    }

    /// Graceful shutdown: stop accepting, let each connection finish the request in progress
    /// (a `send` being committed is committed and answered), close every connection with 1001
    /// `going_away`, flush the store, stop the admin listener.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.supervisor.await;
    }
}

/// The transport configuration, and the certificate reloader when the certificate comes from
/// files.
fn transport_config(
    config: &Config,
    certificate: Certificate,
) -> Result<(ServerConfig, Option<CertificateReloader>)> {
    let mut names = config.server_names.clone();
    if names.is_empty() {
        // Development modes only (validated): the names a local client uses.
        names = vec!["localhost".into(), "127.0.0.1".into()];
    }
    let (transport, reloader) = match certificate {
        Certificate::Files => {
            let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key) else {
                return Err(Error::Config("tls.cert and tls.key are required".into()));
            };
            let (mut tls, reloader) = ServerTls::reloadable_from_pem_files(cert, key)?;
            if let Some(ca) = &config.tls.client_ca {
                tls = tls.with_client_ca_file(ca)?;
            }
            (ServerConfig::new(tls, names), Some(reloader))
        }
        Certificate::Fixed(tls) => (ServerConfig::new(tls, names), None),
        Certificate::InsecurePlaintextForTests => {
            (ServerConfig::insecure_plaintext_for_tests(names), None)
        }
    };
    let mut transport = transport
        .origins(
            OriginPolicy::allow(config.origins.allow.iter().cloned())
                .allow_missing(config.origins.allow_missing),
        )
        .limits(config.limits.to_limits())
        .admission(AdmissionLimits {
            max_connections: config.admission.max_connections,
            max_connections_per_ip: config.admission.max_connections_per_ip,
            connection_rate_per_ip: config.admission.connection_rate_per_ip,
            connection_burst_per_ip: config.admission.connection_burst_per_ip,
        });
    if let Some(tokens) = &config.tokens {
        let keys = TokenKeys::from_file(&tokens.keys_file)
            .map_err(|error| Error::Config(format!("tokens.keys_file: {error}")))?;
        let mut verifier = TokenVerifier::new(keys).with_leeway_secs(tokens.leeway_secs);
        if let Some(audience) = &tokens.audience {
            verifier = verifier.with_audience(audience.clone());
        }
        if let Some(issuer) = &tokens.issuer {
            verifier = verifier.with_issuer(issuer.clone());
        }
        transport = transport.require_token(verifier);
    }
    transport.validate()?;
    Ok((transport, reloader))
}

/// The periodic tasks of a running relay.
struct Housekeeping<S> {
    store: Arc<S>,
    metrics: Metrics,
    retention: Duration,
    reloader: Option<CertificateReloader>,
    reload_interval: Duration,
    reload: Arc<Notify>,
}

impl<S: Store> Housekeeping<S> {
    /// Runs until `stop` turns true.
    async fn run(&self, server: &ServerHandle, mut stop: watch::Receiver<bool>) {
        let mut stats = tokio::time::interval(STATS_INTERVAL);
        let mut expiry = tokio::time::interval(EXPIRY_INTERVAL);
        let mut reload = tokio::time::interval(self.reload_interval);
        for timer in [&mut stats, &mut expiry, &mut reload] {
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = stats.tick() => self.refresh_stats(server).await,
                _ = expiry.tick() => self.expire().await,
                _ = reload.tick() => self.reload_certificate().await,
                () = self.reload.notified() => self.reload_certificate().await,
            }
        }
    }

    async fn refresh_stats(&self, server: &ServerHandle) {
        self.metrics.set_tcp_connections(server.connections());
        match self.store.stats().await {
            Ok(stats) => self
                .metrics
                .set_stored(stats.mailboxes, stats.messages, stats.bytes),
            Err(error) => {
                self.metrics.store_error();
                tracing::error!(%error, "reading store statistics failed");
            }
        }
    }

    async fn expire(&self) {
        let cutoff = unix_now().saturating_sub(self.retention.as_secs());
        loop {
            match self.store.expire(cutoff).await {
                Ok(expired) => {
                    self.metrics.messages_expired(expired.messages);
                    if expired.messages > 0 {
                        tracing::info!(
                            messages = expired.messages,
                            bytes = expired.bytes,
                            "expired unacknowledged messages"
                        );
                    }
                    if !expired.more {
                        return;
                    }
                    // Other writes get their turn between chunks.
                    tokio::task::yield_now().await;
                }
                Err(error) => {
                    self.metrics.store_error();
                    tracing::error!(%error, "expiring messages failed");
                    return;
                }
            }
        }
    }

    async fn reload_certificate(&self) {
        let Some(reloader) = self.reloader.clone() else {
            return;
        };
        // File reads and parsing: off the runtime's workers.
        let outcome = tokio::task::spawn_blocking(move || reloader.reload_if_changed()).await;
        let Ok(outcome) = outcome else {
            tracing::error!("TLS certificate reload task failed");
            return;
        };
        // A swap is logged by the reloader itself (file and fingerprint).
        if let Err(error) = outcome {
            tracing::error!(%error, "TLS certificate reload failed; still serving the previous certificate");
        }
    }
}
