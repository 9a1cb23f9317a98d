//! Compiles `proto/pubsub_api.proto` with a pure-Rust protobuf compiler, so building needs no
//! system `protoc`. Only the client side is generated.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/pubsub_api.proto");
    let descriptors = protox::compile(["pubsub_api.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
