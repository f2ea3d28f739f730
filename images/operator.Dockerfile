# The FleetPipeline operator image, for a public CI or a workstation with a
# container engine. (This project's own CI has no engine: tests/images/build.sh
# assembles the same image with buildah from the same release binary.)
#
#   docker build -f images/operator.Dockerfile -t fleet-operator:dev .
#
# Pinned toolchain and base; `--locked` builds exactly Cargo.lock.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --release -p fleet-operator \
 && install -D -m 0755 target/release/fleet-operator /out/fleet-operator

# glibc, libgcc and CA certificates, nothing else: no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/fleet-operator /usr/local/bin/fleet-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/fleet-operator"]
CMD ["run"]
