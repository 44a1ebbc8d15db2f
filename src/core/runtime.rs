//! The process's one tokio runtime. Everything asynchronous (octocrab's
//! GitHub calls, the plain HTTP client, the HTTP server) runs on it; the
//! rest of patchmoi is blocking code that calls [`block_on`].

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

/// The runtime, started on first use: two worker threads (the machines
/// patchmoi runs on are CI runners and small servers).
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("patchmoi-io")
            .enable_all()
            .build()
            .expect("the OS lets patchmoi start its runtime threads")
    })
}

/// Runs `future` to completion from blocking code (never from inside an
/// async task: use `.await` there).
pub fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}
