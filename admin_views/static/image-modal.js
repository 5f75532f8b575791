/* 证明材料 thumbnails (enterprise/_macros.html): a click shows the image enlarged in
   #image-modal; without Bootstrap's modal the link simply opens the image. */
(function () {
  "use strict";
  var links = document.querySelectorAll(".image-enlarge");
  for (var i = 0; i < links.length; i++) {
    links[i].addEventListener("click", function (event) {
      document.getElementById("image-modal-img").src = this.getAttribute("data-src");
      document.getElementById("image-modal-title").textContent = this.getAttribute("data-title");
      if (!window.jQuery || !window.jQuery.fn.modal) { return; }
      event.preventDefault();
    });
  }
}());
