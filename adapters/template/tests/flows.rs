//! The adapter runs every flow of the adapter × profile matrix against the sandbox profile in
//! its folder (`sandbox-profile.toml`), over real HTTP on 127.0.0.1. Keep this file when you copy
//! the template: it is the test that your adapter works end to end.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_every_flow_on_its_own_profile() {
    smart_testkit::flows::assert_passes_own_profile(&smart_adapter_template::DESCRIPTOR).await;
}
