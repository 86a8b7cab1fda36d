"""The shop's URLs: place an order, read an order."""

from django.urls import path

from shop import views

urlpatterns = [
    path("orders/", views.place_order),
    path("orders/<int:order_id>/", views.order_status),
]
