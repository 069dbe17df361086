//! A small axum server on [`WheelcacheStore`]: log in, count requests per session, log out.
//!
//! ```sh
//! cargo run -p tower-sessions-wheelcache-store --example counter   # listens on 127.0.0.1:3000
//! curl -c jar -b jar -d alice http://127.0.0.1:3000/login          # welcome alice
//! curl -c jar -b jar -X POST http://127.0.0.1:3000/count           # 1, then 2, ...
//! curl -c jar -b jar http://127.0.0.1:3000/whoami                  # alice
//! curl -c jar -b jar -X POST http://127.0.0.1:3000/logout          # bye
//! ```
//!
//! `ADDR` sets the address (`ADDR=127.0.0.1:0` picks a free port). Sessions end after 30
//! minutes without a request, or at logout.

mod app;

use tower_sessions::cookie::time::Duration;
use tower_sessions::Expiry;
use tower_sessions_wheelcache_store::WheelcacheStore;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_string());
    let store = WheelcacheStore::default();
    let app = app::app(store, Expiry::OnInactivity(Duration::minutes(30)));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
