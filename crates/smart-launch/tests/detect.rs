//! The facade's default builder detects among every adapter of the build: against a sandbox
//! emulating each registered adapter's vendor (over real HTTP on 127.0.0.1), a registration with
//! `adapter = "auto"` is served by that vendor's adapter, and the reason names the evidence.

use smart::descriptor::Recognition;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_picks_the_adapter_of_each_vendor_profile() {
    for d in smart::adapters::descriptors() {
        let sandbox = smart_testkit::flows::start(&d.sandbox_profile).await;
        let base = sandbox.fhir_base();
        let client = smart::builder()
            .registration(
                "ehr",
                smart::ClientRegistration::public(&base, "app", "https://app.example/cb")
                    .with_adapter("auto"),
            )
            .build()
            .expect("client");
        let choice = client.detect_adapter(&base).await;
        let expected = match d.recognition {
            // A fallback adapter is what detection settles on when nothing recognises the server.
            Recognition::Fallback => smart::adapters::names()[0],
            _ => d.name,
        };
        assert_eq!(
            choice.adapter, expected,
            "{}'s profile: chose {} ({})",
            d.name, choice.adapter, choice.reason
        );
        assert!(!choice.reason.is_empty());
        sandbox.shutdown().await;
    }
}
