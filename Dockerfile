# A small static image of cmd/node: built in Go's image, run from scratch
# (no shell, no libc, non-root).
#
#   docker build -t drl-node .
#   docker run --rm -p 127.0.0.1:8080:8080 -e DRL_INSECURE=true drl-node   # one throwaway node
#
# It listens on every interface, so a node refuses to start without a
# gossip key (DRL_GOSSIP_KEY_FILE) or TLS, unless DRL_INSECURE=true says
# that anyone who reaches it may join; deploy/ mounts a key and tokens.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/drl-node ./cmd/node
# The state directory, owned by the node's user: a volume mounted there
# starts with this owner.
RUN mkdir -p /out/state && chown 65532:65532 /out/state && chmod 0700 /out/state

FROM scratch
COPY --from=build /out/drl-node /drl-node
COPY --from=build --chown=65532:65532 /out/state /var/lib/drl
USER 65532:65532
# Listen on every interface inside the container; say what to advertise
# with DRL_GOSSIP_ADVERTISE and DRL_GRPC_ADVERTISE (the pod's or
# container's IP), as deploy/ does.
ENV DRL_GOSSIP_ADDR=0.0.0.0:7946 \
    DRL_GRPC_ADDR=0.0.0.0:7947 \
    DRL_HTTP_ADDR=0.0.0.0:8080 \
    DRL_LOG_FORMAT=json \
    DRL_STATE_DIR=/var/lib/drl
VOLUME /var/lib/drl
EXPOSE 7946/tcp 7946/udp 7947/tcp 8080/tcp
ENTRYPOINT ["/drl-node"]
