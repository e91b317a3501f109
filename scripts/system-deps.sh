#!/usr/bin/env bash
# Install the Debian packages the test suite needs, only those that are missing.
set -euo pipefail
needed=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
command -v pg_ctlcluster >/dev/null || needed+=(postgresql)
command -v redis-server >/dev/null || needed+=(redis-server)
have_pkg fonts-noto-core || needed+=(fonts-noto-core)
have_pkg fonts-liberation2 || needed+=(fonts-liberation2)  # Times New Roman metrics + Vietnamese: ND30 text stamps
command -v pdftotext >/dev/null || needed+=(poppler-utils)
command -v softhsm2-util >/dev/null || needed+=(softhsm2)
command -v openssl >/dev/null || needed+=(openssl)
command -v certutil >/dev/null || needed+=(libnss3-tools)
command -v xmlsec1 >/dev/null || needed+=(xmlsec1)
command -v tesseract >/dev/null || needed+=(tesseract-ocr)  # OCR of rendered stamps: Vietnamese must render
have_pkg tesseract-ocr-vie || needed+=(tesseract-ocr-vie)
if [ ${#needed[@]} -gt 0 ]; then
  echo "installing: ${needed[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${needed[@]}" >/dev/null
fi
