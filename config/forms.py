"""The project's form renderer: every Django form field renders as a GOV.UK form group."""

from django.forms.renderers import TemplatesSetting


class GovukFormRenderer(TemplatesSetting):
    form_template_name = "components/form_fields.html"
    field_template_name = "components/field.html"
