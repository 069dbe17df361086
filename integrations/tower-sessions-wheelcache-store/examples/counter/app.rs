//! The example server's routes, shared with the integration tests (which include this
//! file), so the tests drive exactly the server `cargo run --example counter` starts.
//!
//! | route | what it does |
//! |---|---|
//! | `POST /login` (body: a name) | gives the session a new id (so an id handed out before login cannot be used to ride on it) and records the name |
//! | `GET /whoami` | the logged-in name, or 401 |
//! | `POST /count` | adds one to this session's counter and returns it |
//! | `POST /logout` | deletes the session's record from the store and its cookie |

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use tower_sessions::{Expiry, Session, SessionManagerLayer, SessionStore};

const USER: &str = "user";
const COUNT: &str = "count";

/// The server's routes behind a session layer on `store`, sessions ending per `expiry`.
/// The cookie is not marked `Secure`, since the example serves plain HTTP on loopback.
pub(crate) fn app<S: SessionStore + Clone>(store: S, expiry: Expiry) -> Router {
    let sessions = SessionManagerLayer::new(store)
        .with_secure(false)
        .with_expiry(expiry);
    Router::new()
        .route("/login", post(login))
        .route("/whoami", get(whoami))
        .route("/count", post(count))
        .route("/logout", post(logout))
        .layer(sessions)
}

/// A failure of the session store, as the client sees it.
fn store_error<E>(_: E) -> StatusCode {
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn login(session: Session, name: String) -> Result<String, StatusCode> {
    let name = name.trim().to_string();
    if name.is_empty() {
        return Err(StatusCode::BAD_REQUEST);
    }
    session.cycle_id().await.map_err(store_error)?;
    session.insert(USER, &name).await.map_err(store_error)?;
    Ok(format!("welcome {name}"))
}

async fn whoami(session: Session) -> Result<String, StatusCode> {
    let user: Option<String> = session.get(USER).await.map_err(store_error)?;
    user.ok_or(StatusCode::UNAUTHORIZED)
}

async fn count(session: Session) -> Result<String, StatusCode> {
    let n: u64 = session.get(COUNT).await.map_err(store_error)?.unwrap_or(0) + 1;
    session.insert(COUNT, n).await.map_err(store_error)?;
    Ok(n.to_string())
}

async fn logout(session: Session) -> Result<&'static str, StatusCode> {
    session.flush().await.map_err(store_error)?;
    Ok("bye")
}
