//! How much durability costs, and what group commit buys: appends per second to the durable
//! store (redb, fsync per commit) at several concurrency levels, beside the in-memory store.
//!
//! ```sh
//! cargo run --release -p sealwire-relay --example store_throughput
//! ```
//!
//! Each writer task appends 256-byte messages one after another (a sender waits for `accepted`
//! before its next send, like the relay's per-connection request loop); concurrent writers
//! share commits. The figures depend on the disk's fsync latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sealwire_relay::store::{
    CommitInfo, MemoryStore, NewMessage, Quotas, RedbOptions, RedbStore, Store,
};
use sealwire_transport::frame::{MailboxId, MessageId};

/// Messages appended per run (split among the writers).
const MESSAGES: usize = 4_096;

fn quotas() -> Quotas {
    Quotas {
        max_messages: u64::MAX,
        max_bytes: u64::MAX,
        ..Quotas::default()
    }
}

async fn run<S: Store>(
    store: Arc<S>,
    writers: usize,
    run: u8,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let recipient = MailboxId([0xEE; 32]);
    store.register(recipient).await?;
    let per_writer = MESSAGES / writers;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..per_writer {
                let mut id = [0u8; 16];
                id[0] = run;
                id[1..9].copy_from_slice(&(writer as u64).to_be_bytes());
                id[9..13].copy_from_slice(&(n as u32).to_be_bytes());
                let message = NewMessage {
                    from: MailboxId([writer as u8; 32]),
                    id: MessageId(id),
                    to: vec![recipient],
                    payload: vec![0x5A; 256],
                    received_at: 1_780_000_000,
                };
                store.append(message).await?;
            }
            Ok::<(), sealwire_relay::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(start.elapsed())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("{MESSAGES} appends of 256 B per run");
    println!("| store | writers | appends/s | commits | appends per commit | mean commit |");
    println!("|---|---|---|---|---|---|");
    for (run_id, writers) in [1usize, 8, 64, 256].into_iter().enumerate() {
        let dir = tempfile::tempdir()?;
        let commits = Arc::new(AtomicUsize::new(0));
        let commit_nanos = Arc::new(AtomicUsize::new(0));
        let (count, nanos) = (commits.clone(), commit_nanos.clone());
        let options = RedbOptions {
            quotas: quotas(),
            observer: Some(Arc::new(move |info: CommitInfo| {
                count.fetch_add(1, Ordering::Relaxed);
                nanos.fetch_add(info.duration.as_nanos() as usize, Ordering::Relaxed);
            })),
            ..RedbOptions::default()
        };
        let store = Arc::new(RedbStore::open(dir.path(), options)?);
        let elapsed = run(store.clone(), writers, run_id as u8).await?;
        store.close().await?;
        let commits = commits.load(Ordering::Relaxed).max(1);
        let mean = Duration::from_nanos((commit_nanos.load(Ordering::Relaxed) / commits) as u64);
        println!(
            "| redb | {writers} | {:.0} | {commits} | {:.1} | {mean:.2?} |",
            MESSAGES as f64 / elapsed.as_secs_f64(),
            MESSAGES as f64 / commits as f64,
        );
    }
    for writers in [1usize, 64] {
        let store = Arc::new(MemoryStore::new(quotas()));
        let elapsed = run(store, writers, 0).await?;
        println!(
            "| memory | {writers} | {:.0} | - | - | - |",
            MESSAGES as f64 / elapsed.as_secs_f64()
        );
    }
    Ok(())
}
