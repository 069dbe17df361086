//! What the HTTP tests share: the example server's routes, a way to serve them on a free
//! loopback port, and HTTP clients.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

#[path = "../../examples/counter/app.rs"]
mod app;

pub(crate) use app::app;
use axum::Router;

/// Serves `router` on `127.0.0.1:0` in a task of the test's runtime; the server's base URL.
pub(crate) async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("the bound address");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    format!("http://{addr}")
}

/// A client that keeps the cookies the server sets, as a browser does.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("an HTTP client")
}

/// A client that keeps no cookies: each request carries only the headers given.
pub(crate) fn bare_client() -> reqwest::Client {
    reqwest::Client::builder().build().expect("an HTTP client")
}

/// The response's status and body.
pub(crate) async fn call(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a text body"))
}

/// The value of the session cookie (`id`) the response sets, if it sets one.
pub(crate) fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .cookies()
        .find(|c| c.name() == "id")
        .map(|c| c.value().to_string())
}
