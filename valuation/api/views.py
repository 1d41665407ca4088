"""The partner API's endpoints. Every write goes through ``valuation.services``."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from valuation.api.auth import partner_of
from valuation.api.serializers import (
    AddressSerializer,
    BatchRequestSerializer,
    BatchSerializer,
    FeedbackRequestSerializer,
    FeedbackSerializer,
    SalesDeliveryResultSerializer,
    SalesDeliverySerializer,
    ValuationRequestSerializer,
    ValuationSerializer,
)
from valuation.api.services import batch_create, sales_deliver
from valuation.engine import feature_label, geometry_to_wgs84
from valuation.models import ApiScope, BatchJob, Channel, Valuation
from valuation.services import ValuationQuery, feedback_create, valuation_create
from valuation.suggest import suggest
from valuation.tasks import value_batch

LANGUAGE = OpenApiParameter(
    "lang", str, enum=["nl", "fr", "en"], description="Language of the labels (default en)."
)


def _language(request: Request) -> str:
    lang = str(request.query_params.get("lang", "en"))[:2]
    return lang if lang in ("nl", "fr", "en") else "en"


def valuation_payload(valuation: Valuation, language: str) -> dict[str, Any]:
    result = valuation.result
    subject = result.get("subject", {})
    explanation = result.get("explanation", {})
    return {
        "id": valuation.pk,
        "created_at": valuation.created_at,
        "valuation_date": valuation.valuation_date,
        "price_eur": valuation.price_eur,
        "low_eur": valuation.low_eur,
        "high_eur": valuation.high_eur,
        "coverage": valuation.coverage,
        "location": geometry_to_wgs84(valuation.point),  # GeoJSON through rest_framework_gis
        "subject": subject,
        "facts": result.get("facts", {}),
        "base_eur": explanation.get("base_eur"),
        "contributions": [
            {**c, "label": feature_label(c["feature"], language)}
            for c in explanation.get("contributions", [])
        ],
        "distribution": result.get("distribution", {}),
        "comparables": result.get("comparables", []),
        "model_version": result.get("model_version", ""),
        "price_index": result.get("price_index"),
        "vintages": result.get("vintages", {}),
    }


def _id(pk: Any) -> int:
    text = str(pk)
    if not text.isdigit() or len(text) > 18:
        raise Http404
    return int(text)


def _own(request: Request, pk: Any) -> Valuation:
    valuation = Valuation.objects.filter(pk=_id(pk), partner=partner_of(request)).first()
    if valuation is None:  # another partner's valuation is as unknown as a missing one
        raise Http404
    return valuation


class ValuationsView(APIView):
    required_scope = ApiScope.VALUATE

    @extend_schema(
        summary="Value a property",
        request=ValuationRequestSerializer,
        responses={201: ValuationSerializer},
        parameters=[LANGUAGE],
        examples=[
            OpenApiExample(
                "By address, with the living area",
                value={"address": "Dorpsplein 2, 9998", "facts": {"living_area_m2": 140}},
                request_only=True,
            ),
            OpenApiExample(
                "By CaPaKey, on a past date",
                value={"capakey": "99001A0001/00_000", "valuation_date": "2025-06-30"},
                request_only=True,
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        given = ValuationRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        valuation = valuation_create(
            query=ValuationQuery.naming(
                data, facts=dict(data.get("facts", {})), valuation_date=data.get("valuation_date")
            ),
            channel=Channel.API,
            partner=partner_of(request),
        )
        payload = ValuationSerializer(valuation_payload(valuation, _language(request))).data
        return Response(payload, status=status.HTTP_201_CREATED, headers={"Location": f"{valuation.pk}"})


class ValuationDetailView(APIView):
    required_scope = ApiScope.VALUATE

    @extend_schema(
        summary="A stored valuation, as it was",
        description="Example: `GET /api/v1/valuations/1234?lang=fr` gives the valuation that POST "
        "/api/v1/valuations returned, with its labels in French.",
        responses={200: ValuationSerializer},
        parameters=[LANGUAGE],
    )
    def get(self, request: Request, pk: str) -> Response:
        return Response(ValuationSerializer(valuation_payload(_own(request, pk), _language(request))).data)


class FeedbackView(APIView):
    required_scope = ApiScope.VALUATE

    @extend_schema(
        summary="Feedback on a valuation",
        request=FeedbackRequestSerializer,
        responses={201: FeedbackSerializer},
        examples=[
            OpenApiExample(
                "Too high",
                value={"verdict": "too_high", "estimate_eur": 350000, "comment": "Roof to renew."},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request, pk: str) -> Response:
        valuation = _own(request, pk)
        given = FeedbackRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        feedback = feedback_create(valuation=valuation, partner=partner_of(request), **given.validated_data)
        body = {
            "id": feedback.pk,
            "valuation": valuation.pk,
            "verdict": feedback.verdict,
            "estimate_eur": feedback.estimate_eur,
            "comment": feedback.comment,
            "status": feedback.status,
            "created_at": feedback.created_at,
        }
        return Response(FeedbackSerializer(body).data, status=status.HTTP_201_CREATED)


class AddressesView(APIView):
    required_scope = ApiScope.VALUATE

    @extend_schema(
        summary="Find an address or a parcel as a person types it",
        parameters=[
            OpenApiParameter("q", OpenApiTypes.STR, required=True, description="e.g. 'kerkstr 10, 9998'"),
            LANGUAGE,
        ],
        responses={200: AddressSerializer(many=True)},
        examples=[
            OpenApiExample(
                "An address",
                value=[
                    {
                        "label": "Dorpsplein 2, 9998 Demodorp (synthetisch)",
                        "kind": "address",
                        "address_id": 1,
                        "capakey": None,
                        "fill": "",
                        "note": "",
                    }
                ],
                response_only=True,
            )
        ],
    )
    def get(self, request: Request) -> Response:
        text = str(request.query_params.get("q", ""))
        if len(text.strip()) < 2:
            from rest_framework.exceptions import ValidationError

            raise ValidationError({"q": ["Type at least two characters."]})
        return Response(AddressSerializer(suggest(text, _language(request)), many=True).data)


class SalesView(APIView):
    required_scope = ApiScope.DELIVER_SALES

    @extend_schema(
        summary="Deliver sales",
        request=SalesDeliverySerializer,
        responses={200: SalesDeliveryResultSerializer},
        examples=[
            OpenApiExample(
                "Two sales",
                value={
                    "sales": [
                        {
                            "sale_id": "A-2026-0117",
                            "sale_date": "2026-03-15",
                            "price_eur": 325000,
                            "latitude": 50.8466,
                            "longitude": 4.3517,
                            "property_type": "house",
                            "living_area_m2": 145,
                        },
                        {
                            "sale_id": "A-2026-0118",
                            "sale_date": "2026-03-18",
                            "price_eur": 219500,
                            "latitude": 51.0543,
                            "longitude": 3.7174,
                            "property_type": "apartment",
                        },
                    ]
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        given = SalesDeliverySerializer(data=request.data)
        given.is_valid(raise_exception=True)
        result = sales_deliver(partner=partner_of(request), rows=given.validated_data["sales"])
        body = {
            "read": result.read,
            "inserted": result.inserted,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "rejected": result.rejected,
        }
        return Response(SalesDeliveryResultSerializer(body).data)


def _batch_body(request: Request, job: BatchJob) -> dict[str, Any]:
    return {
        "id": job.pk,
        "status": job.status,
        "total": job.total,
        "done": job.done,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "status_url": request.build_absolute_uri(f"/api/v1/valuations/batch/{job.pk}"),
        "results": job.results if job.status == "done" else [],
    }


class BatchView(APIView):
    required_scope = ApiScope.VALUATE

    @extend_schema(
        summary="Value up to 10,000 properties (queued; poll the status URL)",
        request=BatchRequestSerializer,
        responses={202: BatchSerializer},
        examples=[
            OpenApiExample(
                "Three items, one bad",
                value={
                    "items": [
                        {"capakey": "99001A0001/00_000"},
                        {"address": "Dorpsplein 2, 9998"},
                        {"latitude": 123},
                    ]
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        given = BatchRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        items: list[dict[str, Any]] = []
        for raw in given.validated_data["items"]:
            one = ValuationRequestSerializer(data=raw)
            if one.is_valid():
                query = {k: v for k, v in one.validated_data.items() if k != "valuation_date"}
                query["facts"] = dict(query.get("facts", {}))
                when = one.validated_data.get("valuation_date")
                items.append({"query": {**query, "valuation_date": when.isoformat() if when else None}})
            else:
                fields = {str(k): [str(m) for m in v] for k, v in one.errors.items()}
                items.append(
                    {"error": {"code": "invalid", "message": "This item is not valid.", "fields": fields}}
                )
        job = batch_create(partner=partner_of(request), items=items)
        transaction.on_commit(lambda: value_batch.delay(job.pk))
        return Response(BatchSerializer(_batch_body(request, job)).data, status=status.HTTP_202_ACCEPTED)


class BatchDetailView(APIView):
    required_scope = ApiScope.VALUATE

    @extend_schema(
        summary="A batch's progress, then its results",
        description="Example: `GET /api/v1/valuations/batch/17` until `status` is `done`.",
        responses={200: BatchSerializer},
        examples=[
            OpenApiExample(
                "Done, one bad item",
                value={
                    "id": 17,
                    "status": "done",
                    "total": 2,
                    "done": 2,
                    "created_at": "2026-12-07T10:00:00Z",
                    "finished_at": "2026-12-07T10:00:03Z",
                    "status_url": "https://example.org/api/v1/valuations/batch/17",
                    "results": [
                        {
                            "index": 0,
                            "valuation_id": 1234,
                            "price_eur": 337000,
                            "low_eur": 267000,
                            "high_eur": 425000,
                        },
                        {
                            "index": 1,
                            "error": {
                                "code": "invalid",
                                "message": "This item is not valid.",
                                "fields": {"latitude": ["Ensure this value is at most 90."]},
                            },
                        },
                    ],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request, pk: str) -> Response:
        job = BatchJob.objects.filter(pk=_id(pk), partner=partner_of(request)).first()
        if job is None:
            raise Http404
        return Response(BatchSerializer(_batch_body(request, job)).data)
