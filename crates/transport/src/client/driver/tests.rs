//! The connection task's write batching, against a plain WebSocket peer on 127.0.0.1: order,
//! completeness, `pending` bookkeeping and the size of `ack` frames.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::*;
use crate::client::connect::Stream;
use crate::client::writer::max_acks_per_frame;
use crate::frame::Ack;

/// A connected pair: the client's socket and the peer's end.
async fn pair(limits: &Limits) -> (Socket, WebSocketStream<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let client = WebSocketStream::from_raw_socket(
        Stream::Plain(client.unwrap()),
        Role::Client,
        Some(limits.websocket_config()),
    )
    .await;
    let server = WebSocketStream::from_raw_socket(server.unwrap().0, Role::Server, None).await;
    (client, server)
}

/// Every frame the peer receives until the client closes.
fn collect(
    mut peer: WebSocketStream<TcpStream>,
) -> tokio::task::JoinHandle<Vec<(usize, ClientFrame)>> {
    tokio::spawn(async move {
        let mut frames = Vec::new();
        while let Some(Ok(message)) = peer.next().await {
            match message {
                Message::Binary(bytes) => {
                    frames.push((bytes.len(), frame::decode(&bytes).unwrap()))
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
        frames
    })
}

fn message_id(n: usize) -> MessageId {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&(n as u64).to_be_bytes());
    MessageId(id)
}

async fn pending_send(n: usize, permits: &Arc<Semaphore>) -> Command {
    let permit = permits.clone().acquire_owned().await.unwrap();
    let to = vec![MailboxId([7; 32])];
    Command::Send(PendingSend::new(
        message_id(n),
        to,
        vec![n as u8; 256],
        permit,
    ))
}

/// Runs one session over `commands` (all queued beforehand), closes, and returns the exit and
/// the frames the peer received.
async fn run_session(
    limits: &Limits,
    state: &mut State,
    commands: &mut mpsc::Receiver<Command>,
) -> (Exit, Vec<(usize, ClientFrame)>) {
    let (mut ws, peer) = pair(limits).await;
    let received = collect(peer);
    let (events, _events) = mpsc::channel(16);
    let exit = session(&mut ws, limits, state, commands, &events).await;
    ws.close(None).await.unwrap();
    (exit, received.await.unwrap())
}

fn acks(frames: &[(usize, ClientFrame)]) -> Vec<&Vec<u64>> {
    frames
        .iter()
        .filter_map(|(_, frame)| match frame {
            ClientFrame::Ack(ack) => Some(&ack.deliveries),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn queued_sends_and_requests_are_written_in_order_and_stay_pending() {
    let limits = Limits::default();
    let permits = Arc::new(Semaphore::new(1_000));
    let (tx, mut rx) = mpsc::channel(1_000);
    let mut replies = Vec::new();
    let mut acked = Vec::new();
    for n in 0..300 {
        tx.send(pending_send(n, &permits).await).await.unwrap();
        if n % 10 == 9 {
            acked.push(n as u64);
            tx.send(Command::Ack(vec![n as u64])).await.unwrap();
        }
        if n == 150 {
            let (reply, answer) = oneshot::channel();
            replies.push(answer);
            tx.send(Command::Fetch(MailboxId([1; 32]), reply))
                .await
                .unwrap();
        }
    }
    tx.send(Command::Close).await.unwrap();
    tx.send(pending_send(300, &permits).await).await.unwrap();

    let mut state = State::default();
    let (exit, frames) = run_session(&limits, &mut state, &mut rx).await;
    assert!(matches!(exit, Exit::Closed), "{exit:?}");

    // Sends and requests as queued, up to the close; every ack id once, in order.
    let mut expected: Vec<ClientFrame> = Vec::new();
    for n in 0..300 {
        let send = Send {
            id: message_id(n),
            to: vec![MailboxId([7; 32])],
            payload: vec![n as u8; 256],
        };
        expected.push(ClientFrame::Send(send));
        if n == 150 {
            expected.push(ClientFrame::FetchBundle(FetchBundle {
                request: 0,
                mailbox: MailboxId([1; 32]),
            }));
        }
    }
    let others: Vec<ClientFrame> = frames
        .iter()
        .filter(|(_, frame)| !matches!(frame, ClientFrame::Ack(_)))
        .map(|(_, frame)| frame.clone())
        .collect();
    assert_eq!(others, expected);
    let acked_in_frames: Vec<u64> = acks(&frames).into_iter().flatten().copied().collect();
    assert_eq!(acked_in_frames, acked);

    // Nothing was accepted: every send waits in `pending`, in order; the request is kept.
    let pending: Vec<MessageId> = state.pending.iter().map(|send| send.id).collect();
    assert_eq!(pending, (0..300).map(message_id).collect::<Vec<_>>());
    assert!(state.requests.contains_key(&0));
    // The send queued after the close was not taken.
    assert!(matches!(rx.try_recv(), Ok(Command::Send(send)) if send.id == message_id(300)));
}

#[tokio::test]
async fn queued_acks_are_coalesced_into_frames_within_the_limit() {
    let limits = Limits {
        max_frame_size: 1_000,
        ..Limits::default()
    };
    let per_frame = max_acks_per_frame(&limits);
    assert_eq!(per_frame, 98);
    let (tx, mut rx) = mpsc::channel(1_000);
    // 640 acks of one id each, then one of 500 ids (an application may ack many at once).
    for id in 1..=640u64 {
        tx.send(Command::Ack(vec![id])).await.unwrap();
    }
    tx.send(Command::Ack((641..=1_140).collect()))
        .await
        .unwrap();
    tx.send(Command::Close).await.unwrap();

    let mut state = State::default();
    let (exit, frames) = run_session(&limits, &mut state, &mut rx).await;
    assert!(matches!(exit, Exit::Closed), "{exit:?}");
    let acks = acks(&frames);
    let all: Vec<u64> = acks.iter().copied().flatten().copied().collect();
    assert_eq!(
        all,
        (1..=1_140).collect::<Vec<_>>(),
        "every id once, in order"
    );
    for (len, frame) in &frames {
        assert!(
            *len <= limits.max_frame_size,
            "a {len}-byte frame: {frame:?}"
        );
    }
    assert!(acks.iter().all(|ids| ids.len() <= per_frame));
    // Everything was queued before the session ran: ten batches of 64 single acks (one frame
    // each), then the large ack in ⌈500 / 98⌉ = 6 frames.
    assert_eq!(acks.len(), 10 + 6);
}

#[tokio::test]
async fn a_resume_resends_in_order_and_splits_the_acks_gathered_while_disconnected() {
    let limits = Limits {
        max_frame_size: 1_000,
        ..Limits::default()
    };
    let permits = Arc::new(Semaphore::new(10));
    let mut state = State::default();
    for n in 0..3 {
        let Command::Send(send) = pending_send(n, &permits).await else {
            unreachable!()
        };
        state.pending.push_back(send);
    }
    state.acks = (1..=1_000).collect();
    let (tx, mut rx) = mpsc::channel(1);
    tx.send(Command::Close).await.unwrap();

    let (exit, frames) = run_session(&limits, &mut state, &mut rx).await;
    assert!(matches!(exit, Exit::Closed), "{exit:?}");
    let sends: Vec<MessageId> = frames
        .iter()
        .filter_map(|(_, frame)| match frame {
            ClientFrame::Send(send) => Some(send.id),
            _ => None,
        })
        .collect();
    assert_eq!(sends, (0..3).map(message_id).collect::<Vec<_>>());
    let acks = acks(&frames);
    assert_eq!(
        acks.len(),
        1_000_usize.div_ceil(max_acks_per_frame(&limits))
    );
    let all: Vec<u64> = acks.into_iter().flatten().copied().collect();
    assert_eq!(all, (1..=1_000).collect::<Vec<_>>());
    assert!(state.acks.is_empty(), "written once");
}

#[test]
fn an_ack_frame_of_the_largest_ids_fits_in_one_message() {
    for largest in [20, 21, 100, 1_000, 98_304] {
        let limits = Limits {
            max_frame_size: largest,
            ..Limits::default()
        };
        let ack = ClientFrame::Ack(Ack {
            deliveries: vec![u64::MAX; max_acks_per_frame(&limits)],
        });
        assert!(frame::encode(&ack).unwrap().len() <= largest, "{largest}");
    }
    assert_eq!(max_acks_per_frame(&Limits::default()), 9_829);
}
