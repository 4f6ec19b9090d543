"""Production's URLs plus the benchmark's calibration view (bench-only: see ingest_settings.py).

`POST /bench/one_insert` is the least a Django view can do for an event: read the form body,
run one autocommit INSERT, answer a small JSON object. The ingest benchmark serves it with the
same settings and gunicorn as the meter event endpoints and reports the single-event endpoint's
rate as a fraction of this one's.
"""

from django.db import connection
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from billing_site.urls import urlpatterns as production_urlpatterns


@csrf_exempt
def one_insert(request):
    # The table is created by run_ingest.py (TRIVIAL_TABLE_SQL) before the server starts.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_one_insert (body) VALUES (%s)", [request.POST.get("identifier")]
        )
    return JsonResponse({"object": "bench.one_insert"})


urlpatterns = [path("bench/one_insert", one_insert), *production_urlpatterns]
