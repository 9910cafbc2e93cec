// The web console's built bundle is embedded with include_dir (src/console/assets.rs); rebuild
// when it changes.
fn main() {
    println!("cargo:rerun-if-changed=../console/dist");
}
