# docker buildx bake: every service image from the one Dockerfile.
# REGISTRY=ghcr.io/allot-dev TAG=0.1.0 docker buildx bake --push
variable "REGISTRY" { default = "ghcr.io/allot-dev" }
variable "TAG" { default = "0.1.0" }

group "default" {
  targets = ["gate", "credits", "metering", "governance", "control-plane", "mcp", "uplink"]
}

target "service" {
  dockerfile = "Dockerfile"
  platforms  = ["linux/amd64", "linux/arm64"]
}

target "gate" {
  inherits = ["service"]
  args     = { SERVICE = "gate" }
  tags     = ["${REGISTRY}/allot-gate:${TAG}"]
}

target "credits" {
  inherits = ["service"]
  args     = { SERVICE = "credits" }
  tags     = ["${REGISTRY}/allot-credits:${TAG}"]
}

target "metering" {
  inherits = ["service"]
  args     = { SERVICE = "metering" }
  tags     = ["${REGISTRY}/allot-metering:${TAG}"]
}

target "governance" {
  inherits = ["service"]
  args     = { SERVICE = "governance" }
  tags     = ["${REGISTRY}/allot-governance:${TAG}"]
}

target "control-plane" {
  inherits = ["service"]
  args     = { SERVICE = "control-plane" }
  tags     = ["${REGISTRY}/allot-control-plane:${TAG}"]
}

target "mcp" {
  inherits = ["service"]
  args     = { SERVICE = "mcp" }
  tags     = ["${REGISTRY}/allot-mcp:${TAG}"]
}

target "uplink" {
  inherits = ["service"]
  args     = { SERVICE = "uplink" }
  tags     = ["${REGISTRY}/allot-uplink:${TAG}"]
}
