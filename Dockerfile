# Commune edge gateway. Build: docker build -t commune-gateway .
# Run:   docker compose up   (see docker-compose.yml and README.md)
FROM node:22-bookworm-slim

# ffmpeg transcodes announcements for the speakers; espeak-ng is the
# text-to-speech fallback.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg espeak-ng ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, so source edits reuse this layer.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY . .
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && mkdir -p /app/data \
 && chown node:node /app/data

ENV NODE_ENV=production
USER node

# HTTP (dashboard, API, /docs), MQTT, MQTT over TLS (when a cert is configured).
EXPOSE 8080 1883 8883
# The lowdb store and everything else the gateway keeps (settings dataDir ./data).
VOLUME /app/data

CMD ["node", "gateway/dist/main.js"]
