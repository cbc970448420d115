# XMPP ⇄ Matrix bridge with OMEMO.
#
# Base images are build arguments so that the image can be built from local
# bases where no registry is reachable (scripts/docker-test.sh does that):
#   docker build --build-arg GO_IMAGE=… --build-arg RUNTIME_IMAGE=… -t xmpp-bridge .
# The Go builder is pinned to a patch release (the one the tests run with; scripts/docker-test.sh
# checks the pin and builds its stand-in builder image under the same name).
ARG GO_IMAGE=golang:1.26.8-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${GO_IMAGE} AS builder

# Version information for `xmpp-bridge --version` and the bot's `version` command.
ARG VERSION_TAG=""
ARG COMMIT=unknown
ARG BUILD_TIME=unknown
# Lets a build behind a module mirror point Go at it.
ARG GOPROXY=https://proxy.golang.org,direct
# The main package; deployment tests may build deploy/internal/stubbridge instead.
ARG BRIDGE_PKG=./cmd/bridge

# cgo stays on for SQLite (mattn/go-sqlite3); goolm is the pure-Go Olm, so no libolm.
ENV CGO_ENABLED=1 \
    GOTOOLCHAIN=local \
    GOFLAGS=-buildvcs=false

WORKDIR /build
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN MAUTRIX_VERSION="$(awk '$1 == "maunium.net/go/mautrix" { print $2; exit }' go.mod)" \
    && go build -tags goolm -trimpath \
        -ldflags "-s -w \
            -X main.Tag=${VERSION_TAG} \
            -X main.Commit=${COMMIT} \
            -X 'main.BuildTime=${BUILD_TIME}' \
            -X 'maunium.net/go/mautrix.GoModVersion=${MAUTRIX_VERSION}'" \
        -o /out/xmpp-bridge "${BRIDGE_PKG}" \
    && /out/xmpp-bridge --version

FROM ${RUNTIME_IMAGE}

# The bridge runs as this user; docker-run.sh drops to it with setpriv (util-linux)
# after fixing the ownership of /data. Both can be overridden at run time too.
ARG UID=1337
ARG GID=1337
ENV UID=${UID} \
    GID=${GID}

# ca-certificates: TLS to XMPP servers and to the homeserver.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid "${GID}" xmpp-bridge \
    && useradd --uid "${UID}" --gid "${GID}" --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin xmpp-bridge

COPY --from=builder /out/xmpp-bridge /usr/bin/xmpp-bridge
COPY docker-run.sh /docker-run.sh
COPY LICENSE /usr/share/doc/xmpp-bridge/LICENSE

VOLUME /data
WORKDIR /data

# Asks the appservice listener's /_matrix/mau/live (port read from /data/config.yaml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/docker-run.sh", "healthcheck"]

ENTRYPOINT ["/docker-run.sh"]
