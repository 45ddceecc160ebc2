# The two commands a new machine needs: `make test` and `make run`. Both do
# all set-up first (Debian packages, npm ci, control-plane binaries).
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
STATE_DIR ?= $(or $(VIRTFLEET_STATE_DIR),$(CURDIR)/.virtfleet)
JEST := node --experimental-vm-modules --no-warnings=ExperimentalWarning node_modules/jest/bin/jest.js

NATIVE_ADDON := build/Release/virtfleet_libvirt.node
NATIVE_SRC := binding.gyp $(wildcard src/hypervisors/libvirt/native/*.cc src/hypervisors/libvirt/native/*.h)

.PHONY: all setup build native gen typecheck lint format test test-repro test-unit test-integration test-e2e run clean

all: test

setup:
	@hack/setup.sh

build: setup native
	@npm run --silent build

# The libvirt binding (node-addon-api + node-gyp against libvirt-dev), rebuilt
# only when its sources change.
native: setup
	@$(MAKE) --no-print-directory $(NATIVE_ADDON)

$(NATIVE_ADDON): $(NATIVE_SRC)
	@echo "==> building the libvirt binding"
	@npm run --silent build:native

gen: setup
	@npm run --silent gen

typecheck: setup
	@npm run --silent typecheck

# typescript-eslint (eslint.config.js) and Prettier (.prettierrc.json); `make format` rewrites.
lint: setup
	@npm run --silent lint

format: setup
	@npm run --silent format

# Every tier, end-to-end included: unit, integration (real kube-apiserver +
# etcd), e2e (the local stack driven as a user would).
test: setup build typecheck lint
	@$(JEST) --ci --selectProjects unit integration e2e

test-unit: setup
	@$(JEST) --ci --selectProjects unit

test-integration: setup build
	@$(JEST) --ci --selectProjects integration

test-e2e: setup build
	@$(JEST) --ci --selectProjects e2e

# Reproductions of known open defects (docs/development.md): expected to fail until fixed.
test-repro: setup build
	@$(JEST) --ci --passWithNoTests --selectProjects repro

run: setup build
	@node dist/cli/main.js dev --state-dir "$(STATE_DIR)"

clean:
	rm -rf dist build

# The controller image (Dockerfile) built with buildah: vfs storage, chroot isolation, no daemon
# (apt-get install buildah debootstrap). Without BASE/BUILD_BASE, on a local base made from
# Debian packages and the npm registry (hack/image/make-base.sh): no image registry needed.
# image-test runs the controller from the image against a fresh control plane with in-cluster
# credentials until it reconciles a VM (minutes: not part of `make test`).
.PHONY: image image-test
image: setup
	@hack/image/build.sh

image-test: image
	@node --import tsx test/image/controller-from-image.ts
