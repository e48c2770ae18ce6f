from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django_celery_beat.models import PeriodicTask

from results.schedules import detection_entry_name, sync_system_schedules, sync_tenant_schedule
from tenants.models import Plan, Tenant


@receiver(post_save, sender=Tenant)
def tenant_saved(sender, instance: Tenant, raw=False, **kwargs):
    if not raw:
        sync_tenant_schedule(instance)


@receiver(post_delete, sender=Tenant)
def tenant_deleted(sender, instance: Tenant, **kwargs):
    PeriodicTask.objects.filter(name=detection_entry_name(instance)).delete()


@receiver(post_save, sender=Plan)
def plan_saved(sender, instance: Plan, raw=False, **kwargs):
    if not raw:
        for tenant in instance.tenants.all():
            sync_tenant_schedule(tenant)


def install_system_schedules(sender, **kwargs):
    sync_system_schedules()
