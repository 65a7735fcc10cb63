//! `petstore-server [ADDR]`: the petstore of `fixtures/petstore/openapi.yaml`, in memory, on
//! ADDR (default 127.0.0.1:8080), until Ctrl-C.

use std::process::ExitCode;

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    if matches!(arg.as_deref(), Some("-h" | "--help")) {
        println!(
            "petstore-server [ADDR]\n\nServes the petstore of fixtures/petstore/openapi.yaml under /v1, in memory, on \
             ADDR (default 127.0.0.1:8080) until stopped. For the README's walk-through:\n  \
             cargo run -p petstore-server &\n  PETSTORE_BASE_URL=http://127.0.0.1:8080/v1 ./target/debug/pets call create_pet --args '{{\"name\":\"Rex\"}}'"
        );
        return ExitCode::SUCCESS;
    }
    let addr = arg.unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let listener = match std::net::TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e} (another server there? give another address: petstore-server 127.0.0.1:8081)");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(a) => eprintln!("petstore: http://{a}/v1 (in memory; Ctrl-C stops it)"),
        Err(_) => eprintln!("petstore: listening on {addr}"),
    }
    petstore_server::serve(listener, Default::default());
    ExitCode::SUCCESS
}
