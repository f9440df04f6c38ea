"""Stage files keep no more student data than the passback needs (FERPA)."""

from canvas_aspen import stages


class _Canvas:
    def get_course(self, cid):
        return {"id": cid, "sis_course_id": "C"}

    def list_sections(self, cid):
        return [{"id": 1, "sis_section_id": "S1"}]

    def list_student_enrollments(self, cid):
        return [{"user_id": 7, "course_section_id": 1, "sis_user_id": None,
                 "user": {"id": 7, "name": "Ava Johnson", "sortable_name": "Johnson, Ava", "sis_user_id": "S7",
                          "login_id": "ava.j"}}]

    def list_assignment_groups(self, cid):
        return []

    def list_submissions(self, cid):
        return []


def test_extract_keeps_enrollment_ids_but_not_student_names():
    bundle = stages._course_bundle(_Canvas(), 1)
    assert bundle["enrollments"] == [{"user_id": 7, "course_section_id": 1, "sis_user_id": "S7"}]
    assert "Ava" not in repr(bundle) and "ava.j" not in repr(bundle)
