//! One request of an authenticated connection: decoded, checked against the limits, passed
//! to the [`Service`], and answered with an `error` frame if refused.

use super::Shared;
use super::service::{Connection, Refusal, Request, Service};
use crate::code::{CloseCode, ErrorCode};
use crate::frame::{self, ClientFrame, ErrorFrame, ServerFrame, Subject};
use crate::limits::Limits;

/// Checks one request and passes it to the service; `Err` ends the connection with the code.
pub(super) async fn handle<S: Service>(
    connection: &Connection,
    bytes: &[u8],
    shared: &Shared<S>,
) -> Result<(), CloseCode> {
    let (request, subject) = match check_request(bytes, &shared.config.limits) {
        Ok(checked) => checked,
        Err(Checked::Close(code)) => return Err(code),
        Err(Checked::Refuse(code, subject)) => {
            shared.service.request_refused(connection, code);
            return reply_error(connection, code, subject);
        }
    };
    match shared.service.request(connection, request).await {
        Ok(()) => Ok(()),
        Err(Refusal::Error(code)) => reply_error(connection, code, subject),
        Err(Refusal::Close(code)) => Err(code),
    }
}

fn reply_error(
    connection: &Connection,
    code: ErrorCode,
    subject: Subject,
) -> Result<(), CloseCode> {
    let frame = ServerFrame::Error(ErrorFrame {
        code: code.to_u16(),
        subject,
    });
    connection
        .send(&frame)
        .map_err(|_| CloseCode::SLOW_CONSUMER)
}

/// The outcome of checking a request that cannot be passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checked {
    /// End the connection.
    Close(CloseCode),
    /// Answer with an `error` frame.
    Refuse(ErrorCode, Subject),
}

/// Decodes a request of an authenticated connection and checks it against the limits.
///
/// # Errors
/// [`Checked::Close`] for bytes that are not a client frame (1007) or a second `hello` (1008);
/// [`Checked::Refuse`] for a request over a limit or with no or duplicate recipients.
pub(crate) fn check_request(bytes: &[u8], limits: &Limits) -> Result<(Request, Subject), Checked> {
    let frame = frame::decode::<ClientFrame>(bytes)
        .map_err(|_| Checked::Close(CloseCode::MALFORMED_FRAME))?;
    match frame {
        ClientFrame::Hello(_) => Err(Checked::Close(CloseCode::POLICY_VIOLATION)),
        ClientFrame::Send(send) => {
            let subject = Subject::Send(send.id);
            if send.payload.len() > limits.max_payload {
                return Err(Checked::Refuse(ErrorCode::PayloadTooLarge, subject));
            }
            if send.to.len() > limits.max_recipients {
                return Err(Checked::Refuse(ErrorCode::TooManyRecipients, subject));
            }
            if send.to.is_empty() || !frame::distinct(&send.to) {
                return Err(Checked::Refuse(ErrorCode::BadRequest, subject));
            }
            Ok((Request::Send(send), subject))
        }
        ClientFrame::Ack(ack) => {
            if ack.deliveries.is_empty() {
                return Err(Checked::Refuse(ErrorCode::BadRequest, Subject::Ack));
            }
            Ok((Request::Ack(ack), Subject::Ack))
        }
        ClientFrame::UploadPrekeys(upload) => {
            let subject = Subject::Upload(upload.request);
            Ok((Request::UploadPrekeys(upload), subject))
        }
        ClientFrame::FetchBundle(fetch) => {
            let subject = Subject::Fetch(fetch.request);
            Ok((Request::FetchBundle(fetch), subject))
        }
    }
}
