//! JIMI push messages: request parsing (every format JIMI sends), the token
//! check, typed events and the event-time guard. No I/O here: the receiver
//! (`fleet-webhook`) and its store use these pieces.

pub mod auth;
pub mod event;
pub mod guard;
pub mod kind;
pub mod lenient;
pub mod request;

pub use auth::TokenCheck;
pub use event::{Alarm, Event, GpsFix, Heartbeat};
pub use guard::{Guard, Rejection};
pub use kind::PushKind;
pub use request::{PushRequest, RequestError, parse_request};
