// `sqlx::migrate!` embeds the migrations when the crate compiles: a new or
// changed migration must recompile it.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
