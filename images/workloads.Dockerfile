# The workload image: `fleet-ingest <job>` (the CronJobs) and `fleet-webhook`
# (the push receiver). Same build as the operator image.
#
#   docker build -f images/workloads.Dockerfile -t fleet-workloads:dev .
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Every binary of the workloads package (fleet-webhook, fleet-ingest).
RUN cargo install --locked --path workloads --root /out

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/bin/ /usr/local/bin/
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/fleet-webhook"]
