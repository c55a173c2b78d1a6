"""Thin DRF views over the search services and selectors."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from search.selectors import system_status


class StatusOutputSerializer(serializers.Serializer):
    model = serializers.DictField(help_text="model_id, model_key, loaded, error (one sentence naming the setting)")
    index = serializers.DictField(help_text="Active snapshot: version, factory, vector_count, recall_at_10")
    images = serializers.DictField(child=serializers.IntegerField(), help_text="Images per status, and total")
    queues = serializers.DictField(child=serializers.IntegerField(), help_text="Messages waiting per queue")


class StatusView(APIView):
    """Model, index version and counts, queue depth, pending and failed images."""

    permission_classes = [AllowAny]
    throttle_scope = "read"

    @extend_schema(responses=StatusOutputSerializer, operation_id="status")
    def get(self, request: Request) -> Response:
        return Response(StatusOutputSerializer(system_status()).data)
