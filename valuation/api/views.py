"""The partner API's endpoints. Every write goes through ``valuation.services``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from valuation.api.auth import partner_of
from valuation.api.serializers import (
    AddressSerializer,
    FeedbackRequestSerializer,
    FeedbackSerializer,
    ValuationRequestSerializer,
    ValuationSerializer,
)
from valuation.engine import feature_label
from valuation.models import ApiScope, Channel, Feedback, Valuation
from valuation.services import ValuationQuery, valuation_create
from valuation.suggest import suggest

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
        "location": {"type": "Point", "coordinates": [subject.get("longitude"), subject.get("latitude")]},
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


def _own(request: Request, pk: int) -> Valuation:
    from django.http import Http404

    valuation = Valuation.objects.filter(pk=pk, partner=partner_of(request)).first()
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
            query=ValuationQuery(
                address=data.get("address"),
                capakey=data.get("capakey"),
                latitude=data.get("latitude"),
                longitude=data.get("longitude"),
                address_id=data.get("address_id"),
                facts=dict(data.get("facts", {})),
                valuation_date=data.get("valuation_date"),
            ),
            channel=Channel.API,
            partner=partner_of(request),
        )
        payload = ValuationSerializer(valuation_payload(valuation, _language(request))).data
        return Response(payload, status=status.HTTP_201_CREATED, headers={"Location": f"{valuation.pk}"})


class ValuationDetailView(APIView):
    required_scope = ApiScope.VALUATE

    @extend_schema(
        summary="A stored valuation, as it was", responses={200: ValuationSerializer}, parameters=[LANGUAGE]
    )
    def get(self, request: Request, pk: int) -> Response:
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
    def post(self, request: Request, pk: int) -> Response:
        valuation = _own(request, pk)
        given = FeedbackRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        feedback = Feedback.objects.create(
            valuation=valuation,
            partner=partner_of(request),
            verdict=given.validated_data["verdict"],
            estimate_eur=given.validated_data.get("estimate_eur"),
            comment=given.validated_data.get("comment", ""),
        )
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
    )
    def get(self, request: Request) -> Response:
        text = str(request.query_params.get("q", ""))
        if len(text.strip()) < 2:
            from rest_framework.exceptions import ValidationError

            raise ValidationError({"q": ["Type at least two characters."]})
        return Response(AddressSerializer(suggest(text, _language(request)), many=True).data)
