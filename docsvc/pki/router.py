"""HTTP routes of the development PKI: RFC 3161 TSA, RFC 6960 OCSP (POST and GET), CRLs and CA
certificates, at the URLs the PKI bakes into its certificates (``signing.devpki.PkiUrls``).

The routes only move bytes: answers come from ``signing.pki_services``. They are public (no
authentication), as TSA/OCSP/CRL endpoints are for every relying party."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from docsvc import errors
from docsvc.deps import SettingsDep
from docsvc.pki.service import pki_services
from signing.pki_services import ocsp_request_from_get

router = APIRouter(prefix="/pki", tags=["pki"])

#: TSA and OCSP requests are a few hundred bytes; anything larger is not one.
MAX_REQUEST_BYTES = 64 * 1024

_OCSP = "application/ocsp-response"
_CRL = "application/pkix-crl"
_CERT = "application/pkix-cert"


async def _body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise errors.PayloadTooLargeError("PKI requests are limited to 64 KiB", limit=MAX_REQUEST_BYTES)
    return bytes(body)


@router.post("/tsa", response_class=Response, responses={200: {"content": {"application/timestamp-reply": {}}}})
async def timestamp(request: Request, settings: SettingsDep) -> Response:
    """RFC 3161 time-stamp: ``application/timestamp-query`` in, ``application/timestamp-reply`` out."""
    services = pki_services(settings)
    body = await _body(request)
    return Response(await run_in_threadpool(services.tsa.respond, body), media_type="application/timestamp-reply")


@router.post("/ocsp", response_class=Response, responses={200: {"content": {_OCSP: {}}}})
async def ocsp_post(request: Request, settings: SettingsDep) -> Response:
    """RFC 6960 OCSP over POST (``application/ocsp-request``)."""
    services = pki_services(settings)
    body = await _body(request)
    return Response(await run_in_threadpool(services.ocsp.respond, body), media_type=_OCSP)


@router.get("/ocsp/{encoded:path}", response_class=Response, responses={200: {"content": {_OCSP: {}}}})
async def ocsp_get(encoded: str, settings: SettingsDep) -> Response:
    """RFC 6960 §A.1 OCSP over GET: the URL-encoded base64 DER request in the path."""
    services = pki_services(settings)
    answer = await run_in_threadpool(services.ocsp.respond, ocsp_request_from_get(encoded))
    return Response(answer, media_type=_OCSP)


@router.get("/crl", response_class=Response, responses={200: {"content": {_CRL: {}}}})
async def issuing_crl(settings: SettingsDep) -> Response:
    """DER CRL of the issuing CA."""
    return Response(await run_in_threadpool(pki_services(settings).crl, "issuing"), media_type=_CRL)


@router.get("/root-ca.crl", response_class=Response, responses={200: {"content": {_CRL: {}}}})
async def root_crl(settings: SettingsDep) -> Response:
    """DER CRL of the root CA (covers the issuing CA certificate)."""
    return Response(await run_in_threadpool(pki_services(settings).crl, "root"), media_type=_CRL)


@router.get("/issuing-ca.crt", response_class=Response, responses={200: {"content": {_CERT: {}}}})
async def issuing_certificate(settings: SettingsDep) -> Response:
    """DER certificate of the issuing CA (caIssuers of end-entity certificates)."""
    return Response(pki_services(settings).ca_certificate("issuing"), media_type=_CERT)


@router.get("/root-ca.crt", response_class=Response, responses={200: {"content": {_CERT: {}}}})
async def root_certificate(settings: SettingsDep) -> Response:
    """DER certificate of the root CA (the trust anchor to install)."""
    return Response(pki_services(settings).ca_certificate("root"), media_type=_CERT)
