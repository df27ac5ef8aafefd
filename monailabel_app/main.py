"""osnet-monai's MONAI Label app: the bundle for /infer and /train, behind a datastore that keeps every
file it writes inside the studies folder.

MONAI Label's sample ``monaibundle`` app serves any bundle, but its local datastore builds file paths
from the request's image id and label tag as given: ``PUT /datastore/?image=../x`` writes ``x.nii.gz``
beside the studies folder, an absolute id anywhere the server may write. This app is that sample
app's bundle part (no SAM, no epistemic scoring) with :class:`GuardedDatastore`, which answers such
ids and tags with 400 before anything is written. Start it like the sample app, with the bundle
copied to ``monailabel_app/model/osnet_odt_nucleus_segmentation`` (docs/monailabel.md):

    monailabel start_server --app monailabel_app --studies STUDIES --conf models osnet_odt_nucleus_segmentation
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from typing import Any, Dict

from fastapi import HTTPException

import monailabel
from monailabel.config import settings
from monailabel.datastore.local import LocalDatastore
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.tasks.infer.bundle import BundleInferTask
from monailabel.tasks.train.bundle import BundleTrainTask
from monailabel.utils.others.generic import get_bundle_models, strtobool

logger = logging.getLogger(__name__)

#: an image id or label tag is one plain file-name part: letters, digits, '.', '_', '-', and not '.' or '..'
_SAFE_NAME = re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9._-]{1,200}$")


def check_name(value: str, what: str) -> str:
    """``value`` if it is one plain file-name part; else a 400 naming it (no path, no '..', no NUL)."""
    if not isinstance(value, str) or not _SAFE_NAME.match(value):
        raise HTTPException(status_code=400, detail=f"{what} {value!r} refused: use letters, digits, '.', '_' and '-' only "
                                                    "(no path separators, no '..')")
    return value


def input_problem(err: BaseException) -> str | None:
    """The project's one-line message about a bad input file, if ``err`` was caused by one."""
    from osnet_monai.readers.errors import InputError

    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, InputError):
            return str(err)
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


class GuardedDatastore(LocalDatastore):
    """MONAI Label's local datastore, refusing image ids and label tags that would leave the studies
    folder, and images that are no RI tomogram, before anything is written."""

    def add_image(self, image_id: str, image_filename: str, image_info: Dict[str, Any]) -> str:
        if image_id:
            check_name(image_id, "image id")
        else:  # the id then comes from the uploaded file's name
            image_id = check_name(self._to_id(os.path.basename(image_filename))[0], "image id")
        from osnet_monai.readers import InputError, load_tomogram

        try:
            load_tomogram(image_filename)
        except InputError as err:  # the project's one line, named by the id rather than the upload's temporary file
            raise HTTPException(status_code=400, detail=str(err).replace(image_filename, f"image {image_id!r}")) from err
        return super().add_image(image_id, image_filename, image_info)

    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: Dict[str, Any]) -> str:
        check_name(image_id, "image id")
        check_name(label_tag, "label tag")
        if image_id not in self._datastore.objects:
            raise HTTPException(status_code=404, detail=f"image id {image_id!r} is not in the datastore")
        return super().save_label(image_id, label_filename, label_tag, label_info)

    def remove_image(self, image_id: str) -> None:
        check_name(image_id, "image id")
        return super().remove_image(image_id)

    def remove_label(self, label_id: str, label_tag: str) -> None:
        check_name(label_id, "label id")
        check_name(label_tag, "label tag")
        return super().remove_label(label_id, label_tag)


class OSNetApp(MONAILabelApp):
    def __init__(self, app_dir, studies, conf):
        self.models = get_bundle_models(app_dir, conf)
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name=f"osnet-monai (MONAI Label {monailabel.__version__})",
            description="Nucleus segmentation in refractive-index tomograms (OS-Net bundle)",
            version=monailabel.__version__,
        )

    def init_datastore(self) -> Datastore:
        if self.studies.startswith(("http://", "https://")):
            return super().init_datastore()  # remote datastores build no local paths
        return GuardedDatastore(
            self.studies,
            extensions=settings.MONAI_LABEL_DATASTORE_FILE_EXT,
            auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
            read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY,
        )

    def infer(self, request, datastore=None):
        """MONAI Label's infer, with 404 for an unknown model or image, 400 for an image id that is a path
        (MONAI Label would read any server file named so), 422 with the project's one line for a file
        that is no RI tomogram."""
        model = request.get("model")
        if model not in self._infers:
            raise HTTPException(status_code=404, detail=f"no model {model!r}; models: {', '.join(sorted(self._infers))}")
        image = request.get("image")
        uploaded = isinstance(image, str) and os.path.dirname(os.path.abspath(image)) == tempfile.gettempdir() and os.path.isfile(image)
        if isinstance(image, str) and not uploaded:  # the endpoint stores an uploaded file in the temp folder
            check_name(image, "image id")
            if image not in (datastore or self.datastore()).list_images():
                raise HTTPException(status_code=404, detail=f"image id {image!r} is not in the datastore")
        try:
            return super().infer(request, datastore)
        except Exception as err:
            problem = input_problem(err)
            if problem is None:
                raise
            raise HTTPException(status_code=422, detail=problem.replace(str(image), f"image {image!r}")) from err

    def init_infers(self) -> Dict[str, InferTask]:
        return {name: BundleInferTask(path, self.conf) for name, path in self.models.items()}

    def init_trainers(self) -> Dict[str, TrainTask]:
        if strtobool(self.conf.get("skip_trainers", "false")):
            return {}
        trainers = {name: BundleTrainTask(path, self.conf) for name, path in self.models.items()}
        return {name: task for name, task in trainers.items() if task and task.is_valid()}
