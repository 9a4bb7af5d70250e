//! A real browser for the tests: Debian's headless Chromium, driven over
//! the DevTools protocol, that reaches nothing but the loopback — every
//! other host fails to resolve, and every other address goes to a proxy
//! that is not there — and keeps the address of every request a page made.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::network::EventRequestWillBeSent;
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::Page;
use futures::StreamExt;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The browser's program: `CHROMIUM`, or Debian's.
fn executable() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

pub struct Chromium {
    browser: Browser,
    handler: JoinHandle<()>,
    requests: Arc<Mutex<Vec<String>>>,
    profile: std::path::PathBuf,
}

impl Chromium {
    /// Starts a headless Chromium with a profile of its own, the size of a
    /// phone's screen unless told otherwise.
    pub async fn launch() -> Chromium {
        let profile =
            std::env::temp_dir().join(format!("espace-famille-chromium-{}", Uuid::new_v4().simple()));
        let config = BrowserConfig::builder()
            .chrome_executable(executable())
            .no_sandbox()
            .user_data_dir(&profile)
            .viewport(Viewport {
                width: 390,
                height: 844,
                ..Viewport::default()
            })
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(30))
            .arg("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
            .arg("--proxy-server=http://127.0.0.1:9")
            .arg("--disable-gpu")
            .arg("--disable-dev-shm-usage")
            .arg("--no-first-run")
            .build()
            .expect("a browser configuration");
        let (browser, mut handler) = Browser::launch(config)
            .await
            .unwrap_or_else(|e| panic!("Chromium ({}) did not start: {e}", executable()));
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Chromium {
            browser,
            handler,
            requests: Arc::new(Mutex::new(Vec::new())),
            profile,
        }
    }

    /// Opens `url` in a new tab, recording every request the tab makes.
    pub async fn open(&self, url: &str) -> Page {
        let page = self.browser.new_page("about:blank").await.expect("a new tab");
        let mut sent = page
            .event_listener::<EventRequestWillBeSent>()
            .await
            .expect("the requests of the tab");
        let requests = self.requests.clone();
        tokio::spawn(async move {
            while let Some(event) = sent.next().await {
                requests.lock().unwrap().push(event.request.url.clone());
            }
        });
        page.goto(url).await.expect("the page did not load");
        page
    }

    /// Every address requested so far, by every tab.
    pub fn requested(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.handler.abort();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Types `text` into the field `selector` of the page.
pub async fn fill(page: &Page, selector: &str, text: &str) {
    page.find_element(selector)
        .await
        .unwrap_or_else(|e| panic!("no {selector} on the page: {e}"))
        .click()
        .await
        .expect("the field takes no click")
        .type_str(text)
        .await
        .expect("the field takes no text");
}

/// Clicks `selector` and waits for the page it leads to: the document
/// that had the click is marked, and the next one without the mark, fully
/// loaded, is the answer.
pub async fn submit(page: &Page, selector: &str) {
    page.evaluate("window.__before_submit = true")
        .await
        .expect("the page takes no script");
    page.find_element(selector)
        .await
        .unwrap_or_else(|e| panic!("no {selector} on the page: {e}"))
        .click()
        .await
        .expect("the button takes no click");
    for _ in 0..400 {
        let loaded = page
            .evaluate("window.__before_submit === undefined && document.readyState === 'complete'")
            .await
            .ok()
            .and_then(|result| result.into_value::<bool>().ok());
        if loaded == Some(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no page after the form within 20 s");
}

/// The text of the page as a person reads it.
pub async fn text_of(page: &Page) -> String {
    page.find_element("body")
        .await
        .expect("the page has no body")
        .inner_text()
        .await
        .expect("the page's text")
        .unwrap_or_default()
}

/// The page's text, or `None` while it is between two documents (a page
/// that refreshes itself).
pub async fn text_now(page: &Page) -> Option<String> {
    page.find_element("body").await.ok()?.inner_text().await.ok()?
}
